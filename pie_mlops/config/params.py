"""Read one stage's section of a params file, validated against the schema (pie_mlops/config/schema.py).

Every params file is an overlay on the schema's defaults: params.yaml spells all of them out
(DVC tracks each key), a profile (profiles/NAME.yaml) states only what differs.
"""

from __future__ import annotations

import re
from pathlib import Path

from pie_mlops.util.errors import PieError

DEFAULT_PARAMS = "params.yaml"
PROFILES_DIR = "profiles"
_TYPE_TAGS = {"int", "float", "str", "bool", "none", "literal['bert','bilstm']"}
_PROFILE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
# A params file is a few KB; YAML aliases can make a 1 KB file expand to billions of values
# (the "billion laughs"), which validating or printing would take for ever. Both are refused.
MAX_FILE_BYTES = 1 * 2**20
MAX_VALUES = 100_000  # values once aliases are expanded; the paper profile has a few hundred


def profile_path(name: str) -> Path:
    """The params file of a profile: `default` is params.yaml, NAME is profiles/NAME.yaml."""
    if name == "default":
        return Path(DEFAULT_PARAMS)
    if not _PROFILE_NAME.match(name) or ".." in name:
        raise PieError(f"--profile {name!r}: a profile is a name (letters, digits, _ . -), not a path; "
                       f"give a file with --params FILE")
    path = Path(PROFILES_DIR) / f"{name}.yaml"
    if not path.is_file():
        known = sorted(p.stem for p in Path(PROFILES_DIR).glob("*.yaml")) if Path(PROFILES_DIR).is_dir() else []
        raise PieError(f"{path}: no such profile; choose default or one of {', '.join(known) or '(none found)'} "
                       f"(run from the project root)")
    return path


def read_file(path: str | Path) -> dict:
    """The params file as a mapping of sections; a missing or malformed file is exit 2."""

    path = Path(path)
    if str(path) == DEFAULT_PARAMS and not path.exists():
        return {}  # no params.yaml here: the schema's defaults, which params.yaml spells out anyway
    if not path.is_file():
        raise PieError(f"{path}: no such params file (run from the project root, or give --params FILE "
                       f"or --profile NAME)")
    doc = _load_bounded(path, "not valid YAML")
    if doc is None:
        return {}
    if not isinstance(doc, dict):
        raise PieError(f"{path}: must be a mapping of sections (materialize:, train:, ...), "
                       f"not a {type(doc).__name__}")
    return doc


def _load_bounded(path: Path, what: str, hint: str = ""):
    """yaml.safe_load of `path`, refused (PieError) over MAX_FILE_BYTES or MAX_VALUES expanded values."""
    import yaml

    if path.stat().st_size > MAX_FILE_BYTES:
        raise PieError(f"{path}: {path.stat().st_size:,} bytes; a params file is at most {MAX_FILE_BYTES:,}")
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError, RecursionError) as exc:
        raise PieError(f"{path}: {what} ({str(exc).splitlines()[0] if str(exc) else type(exc).__name__}){hint}") from None
    if _expanded_size(doc, {}) > MAX_VALUES:
        raise PieError(f"{path}: expands to over {MAX_VALUES:,} values through YAML aliases (&/*); "
                       f"write the values out")
    return doc


def _expanded_size(value, memo: dict) -> int:
    """Values in `value` with every alias expanded, counted once per shared node (memo by id),
    so a billion-laughs document is measured in microseconds. Stops early past the bound."""
    if id(value) in memo:
        return memo[id(value)]
    if isinstance(value, dict):
        items = [*value.keys(), *value.values()]
    elif isinstance(value, list):
        items = value
    else:
        return 1
    memo[id(value)] = MAX_VALUES + 1  # a cycle (a recursive alias) counts as too large
    total = 1
    for item in items:
        total += _expanded_size(item, memo)
        if total > MAX_VALUES:
            break
    memo[id(value)] = total
    return total


def validate(section: str, values: dict, source: str | Path = DEFAULT_PARAMS) -> dict:
    """`values` over the section's schema defaults, checked and typed; exit 2 naming the key."""
    from pydantic import ValidationError

    from pie_mlops.config.schema import SECTIONS

    base = SECTIONS[section]().model_dump()
    archs = {"bert", "bilstm"}
    # A per-architecture overlay on a per-architecture default changes only the architectures
    # it names: `seeds: {bilstm: [0, 1]}` keeps bert's seeds.
    values = {k: ({**base[k], **v} if isinstance(v, dict) and isinstance(base.get(k), dict)
                  and v and base[k] and set(v) | set(base[k]) <= archs else v) for k, v in values.items()}
    try:
        return SECTIONS[section].model_validate(values).model_dump()
    except ValidationError as exc:
        # A per-architecture value is a union: report the branch that got furthest, without
        # pydantic's branch tags (`list[int]`, `dict[...]`) in the key path.
        def path(e: dict) -> list:
            return [p for p in e["loc"]
                    if not (isinstance(p, str) and ("[" in p or p in _TYPE_TAGS or p.startswith("constrained-")))]

        # The deepest, and of equals not a wrong key (`imdb` is no architecture, but is a dataset).
        err = max(exc.errors(), key=lambda e: (len(path(e)), e["type"] != "literal_error"))
        loc = path(err)
        where = ".".join(str(p) for p in (section, *loc))
        if err["type"] == "extra_forbidden":
            known = ", ".join(SECTIONS[section].model_fields)
            raise PieError(f"{source}: unknown key {where}; known keys of {section!r}: {known}") from None
        raise PieError(f"{source}: {where}: {err['msg']} (got {err.get('input')!r})") from None


def load_section(section: str, defaults: dict | None = None, path: str | Path = DEFAULT_PARAMS) -> dict:
    """One section of the params file at `path`, over the schema's defaults, validated.

    `defaults` is only used for a section the schema does not know (a plugin's own).
    """
    from pie_mlops.config.schema import SECTIONS

    values = read_file(path).get(section) or {}
    if not isinstance(values, dict):
        raise PieError(f"{path}: section {section!r} must be a mapping, not {type(values).__name__}")
    if section in SECTIONS:
        return validate(section, values, path)
    unknown = sorted(set(values) - set(defaults or {}))
    if unknown:
        raise PieError(f"{path}: unknown key(s) in {section!r}: {', '.join(unknown)}")
    return {**(defaults or {}), **values}


def load_all(path: str | Path = DEFAULT_PARAMS) -> dict:
    """Every section of the params file at `path`, over the defaults: what the study runs with."""
    from pie_mlops.config.schema import SECTIONS

    doc = read_file(path)
    unknown = sorted(set(doc) - set(SECTIONS))
    if unknown:
        raise PieError(f"{path}: unknown section(s) {', '.join(unknown)}; known: {', '.join(SECTIONS)}")
    return {name: load_section(name, None, path) for name in SECTIONS}


def render(params: dict) -> str:
    """The params as YAML, one line per key, in the schema's order (for `pie-mlops params`)."""
    import yaml

    def flow(value) -> str:
        return yaml.safe_dump(value, default_flow_style=True, width=10**6, sort_keys=False).strip().removesuffix("\n...")

    return "\n".join(f"{section}:\n" + "".join(f"  {k}: {flow(v)}\n" for k, v in values.items())
                     for section, values in params.items())


# Per-architecture values and the tuned hyperparameters (shared by train, prune and the worker grid).
TUNED = ("lr", "epochs", "batch_size", "warmup_ratio")


def as_list(value) -> list:
    if value is None:
        return []
    if isinstance(value, str):
        return [v.strip() for v in value.split(",") if v.strip()]
    return list(value) if isinstance(value, (list, tuple)) else [value]


def read_best_params(path: Path) -> dict:
    """The tuned hyperparameters in `path` ({} if there is none); PieError if it does not parse."""

    if not path.is_file():
        return {}
    doc = _load_bounded(path, "tuned-params file does not parse", "; re-run `pie-mlops tune` or delete it")
    if not isinstance(doc, dict):
        raise PieError(f"{path}: tuned-params file must be a mapping of {', '.join(TUNED)}")
    best = {k: v for k, v in doc.items() if k in TUNED}
    try:  # wrong types would only fail deep inside training, after the run started
        return {k: int(v) if k in ("epochs", "batch_size") else float(v) for k, v in best.items()}
    except (TypeError, ValueError):
        raise PieError(f"{path}: tuned-params values must be numbers, got {best}") from None


def best_params_file(params: dict) -> Path:
    """params/best_<dataset>_<arch>.yaml (the section's `best_params` pattern), written by `tune`."""
    return Path(str(params["best_params"]).format(dataset=params["dataset"], arch=params["arch"]))


def hyperparameters(params: dict, keys, *, tunable=None, force: dict | None = None) -> dict:
    """A model job's hyperparameters, by the one precedence rule of train and prune:
    1. the section's values (params.yaml or a profile);
    2. the tuned ones (best_params_file), for the keys in `tunable` (all it holds when None);
    3. `force`: values given explicitly (command-line options; a prune.lr that is set).
    `params` holds one architecture's values (for_arch)."""
    hp = {k: params[k] for k in keys}
    hp.update({k: v for k, v in read_best_params(best_params_file(params)).items() if tunable is None or k in tunable})
    hp.update(force or {})
    return hp


def for_arch(params: dict, arch: str, section: str = "train") -> dict:
    """The params of one architecture. Any value may be a mapping arch -> value, so one
    section serves both: `seeds: {bert: [0, 1, 2], bilstm: [0, 1, 2, 3, 4]}` (a cheap BiLSTM
    affords more seeds, or more data, in the same time budget)."""
    from pie_mlops.config.fidelity import per_dataset
    from pie_mlops.config.vocabulary import ARCHS

    if arch not in ARCHS:  # before any per-architecture value is looked up for it
        raise PieError(f"unknown architecture {arch!r}; choose one of {', '.join(ARCHS)}")
    out = {}
    for key, value in params.items():
        value = per_dataset(key, value, params.get("dataset"), ARCHS, section)  # max_length: {imdb: 512, ...}
        if isinstance(value, dict) and key != "space":
            if arch not in value:
                raise PieError(f"{section}.{key} gives one value per architecture but none for {arch!r} "
                               f"(has: {', '.join(map(str, value))})")
            value = per_dataset(key, value[arch], params.get("dataset"), ARCHS, section)
        out[key] = value
    return dict(out, arch=arch)


def seed_parallel(params: dict, arch: str, section: str = "train") -> bool:
    """Whether `section` computes `arch`'s seeds together (docs/seed-parallel.md); a PieError
    where that is not built: training stacks both architectures, pruning the BiLSTM only."""
    value = params.get("seed_parallel", False)
    if not isinstance(value, bool):
        raise PieError(f"{section}.seed_parallel must be true or false (or one per architecture), got {value!r}")
    if value and arch != "bilstm" and not (section == "train" and arch == "bert"):
        raise PieError(f"{section}.seed_parallel is built for the bilstm only; set it false for {arch}")
    return value


def seeds_for(params: dict, arch: str, section: str = "train") -> list[int]:
    """The seeds of one architecture (a list for all, or a mapping arch -> list)."""
    value = for_arch({"seeds": params["seeds"]}, arch, section)["seeds"]
    try:
        seeds = list(dict.fromkeys(int(s) for s in as_list(value)))
    except (TypeError, ValueError):
        raise PieError(f"{section}.seeds must be integers, got {params['seeds']!r}") from None
    if not seeds:
        raise PieError(f"{section}.seeds is empty for {arch}")
    bad = [s for s in seeds if not 0 <= s < 2**32]  # --seeds is not schema-checked: numpy and torch refuse these
    if bad:
        raise PieError(f"{section}.seeds (or --seeds): {bad[0]} is not a seed; use 0 .. 2**32 - 1")
    return seeds
