"""One resolved, typed plan per stage: what a stage function takes (docs/design.md §3, "Plans").

`resolve(section, params_file, overrides, arch)` is the one way a stage's values are made, by
the CLI, `study`, the worker and the tests alike:
1. the section of the params file over the schema's defaults (pie_mlops/config/schema.py), with
   the keys the stage shares with the others (dataset, arch, model_path, data_dir) taken from
   the file's `study` section, the only place a file states them;
2. `overrides` (command-line options; a test's shrunk values) over it, validated by the same
   schema, so `--seeds 0,1,2` is parsed and checked like `seeds: [0, 1, 2]`;
3. with `arch`: values given per architecture (`{bert: ..., bilstm: ...}`) or per dataset
   (`max_length: {bbc_news: 512}`) collapsed for it, then the tuned values of train and prune
   (the `best_params` file `tune` writes) over the section's, except the keys given in
   `overrides`, which win over everything (one precedence rule).
The result is the section's pydantic model; `plan.arch` is one architecture after step 3.
"""

from __future__ import annotations

from pathlib import Path
from typing import TypeVar

from pie_mlops.config.params import DEFAULT_PARAMS, read_best_params, read_file, validate
from pie_mlops.config.schema import SECTIONS, STUDY_KEYS, Section, own, shared_keys
from pie_mlops.util.errors import PieError

S = TypeVar("S", bound=Section)
# The hyperparameters `tune` writes that each section takes from the tuned file. prune's epochs
# are not tuned (prune.epochs_per_step), and a prune.lr that is set wins over the tuned one.
TUNED = {"train": ("lr", "epochs", "batch_size", "warmup_ratio"), "prune": ("lr", "batch_size", "warmup_ratio")}


def section_of(plan: Section) -> str:
    return next(name for name, model in SECTIONS.items() if isinstance(plan, model))


def resolve(section: str, params_file: str | Path = DEFAULT_PARAMS, overrides: dict | None = None,
            arch: str | None = None) -> Section:
    """The plan of `section`: the file's values, then `overrides` (None values are not given),
    validated; with `arch`, resolved for that architecture (for_arch). PieError names the key."""
    if section not in SECTIONS:
        raise PieError(f"unknown section {section!r}; known: {', '.join(SECTIONS)}")
    doc = read_file(params_file)
    values = _mapping(doc, section, params_file)
    if section != "study":
        stated = [k for k in values if k in STUDY_KEYS]
        if stated:  # one place: dvc.yaml's paths and every stage follow study's value
            raise PieError(f"{params_file}: {section}.{stated[0]} is a study key, shared by every stage: "
                           f"set study.{stated[0]}")
        study = validate("study", _mapping(doc, "study", params_file), params_file)
        values = {**{k: study[k] for k in shared_keys(section)}, **values}
    given = {k: v for k, v in (overrides or {}).items() if v is not None}
    base = validate(section, values, params_file)
    plan = SECTIONS[section].model_validate(validate(section, overlay(base, given), params_file, given=set(given)))
    plan._given = frozenset(given)
    return for_arch(plan, arch) if arch is not None else plan


def _mapping(doc: dict, section: str, params_file) -> dict:
    values = doc.get(section) or {}
    if not isinstance(values, dict):
        raise PieError(f"{params_file}: section {section!r} must be a mapping, not {type(values).__name__}")
    return values


def load_all(params_file: str | Path = DEFAULT_PARAMS) -> dict:
    """Every section of the params file, over the defaults, as plain values in the file's shape
    (the shared keys once, under `study`): what `pie-mlops params` prints and `dvc repro` reads.
    A stage's own plan is `resolve(section, ...)`."""
    unknown = sorted(set(read_file(params_file)) - set(SECTIONS))
    if unknown:
        raise PieError(f"{params_file}: unknown section(s) {', '.join(unknown)}; known: {', '.join(SECTIONS)}")
    return {name: own(name, resolve(name, params_file).model_dump()) for name in SECTIONS}


def per_arch(section: str, params_file: str | Path = DEFAULT_PARAMS, overrides: dict | None = None) -> list:
    """One resolved plan per architecture of the section's `arch` (train, prune, tune)."""
    plan = resolve(section, params_file, overrides)
    return [for_arch(plan, arch) for arch in archs(plan)]


def archs(plan: Section) -> list[str]:
    """The plan's architectures, in order, once each; PieError when there are none."""
    value = plan.arch
    out = list(dict.fromkeys([value] if isinstance(value, str) else value))
    if not out:
        raise PieError(f"study.arch (or {section_of(plan)} --arch) is empty: give bert, bilstm or a list of them")
    return out


def for_arch(plan: S, arch: str, tuned: bool = True) -> S:
    """`plan` for one architecture: per-architecture and per-dataset values collapsed, seeds
    made unique (and required), then (`tuned`) the tuned values of train and prune applied."""
    from pie_mlops.config.fidelity import per_dataset
    from pie_mlops.config.vocabulary import ARCHS

    section = section_of(plan)
    if arch not in ARCHS:  # before any per-architecture value is looked up for it
        raise PieError(f"unknown architecture {arch!r}; choose one of {', '.join(ARCHS)}")
    out = {}
    for key, value in plan.model_dump().items():
        value = per_dataset(key, value, getattr(plan, "dataset", None), ARCHS, section)
        if isinstance(value, dict) and (key != "space" or (value and set(value) <= set(ARCHS))) \
                and key != "claims":
            if arch not in value:
                raise PieError(f"{section}.{key} gives one value per architecture but none for {arch!r} "
                               f"(has: {', '.join(map(str, value))})")
            value = per_dataset(key, value[arch], getattr(plan, "dataset", None), ARCHS, section)
        out[key] = value
    out["arch"] = arch
    if "seeds" in out:
        out["seeds"] = list(dict.fromkeys(out["seeds"]))
        if not out["seeds"]:
            raise PieError(f"{section}.seeds is empty for {arch}")
    if section == "tune" and arch != "bert":  # model_path names a transformer; the BiLSTM builds on GloVe
        out["model_path"] = None
    if tuned and section in TUNED:
        out.update(tuned_values(out, section, plan._given))
    one = type(plan).model_validate(validate(section, out, best_params_file(out) if tuned else DEFAULT_PARAMS))
    one._given = plan._given
    return one


def tuned_values(values: dict, section: str, given=()) -> dict:
    """The tuned hyperparameters that win over `values` (one architecture's): train takes every
    one; prune all but lr when prune.lr is set; neither the keys given explicitly."""
    keep = set(given) | ({"lr"} if section == "prune" and values.get("lr") is not None else set())
    return {k: v for k, v in read_best_params(best_params_file(values)).items()
            if k in TUNED[section] and k not in keep}


def best_params_file(values) -> Path:
    """params/best_<dataset>_<arch>.yaml (the section's `best_params` pattern), written by `tune`."""
    get = values.get if isinstance(values, dict) else lambda k: getattr(values, k)
    return Path(str(get("best_params")).format(dataset=get("dataset"), arch=get("arch")))


def seed_parallel(plan: Section) -> bool:
    """Whether a train or prune plan computes its seeds together (docs/seed-parallel.md); a
    PieError where that is not built: training stacks both architectures, pruning the BiLSTM only."""
    section = section_of(plan)
    if plan.seed_parallel and plan.arch != "bilstm" and not (section == "train" and plan.arch == "bert"):
        raise PieError(f"{section}.seed_parallel is built for the bilstm only; set it false for {plan.arch}")
    return plan.seed_parallel


def one_arch(plans, stage: str) -> list:
    """A stage's plans as a list, each resolved for one architecture (the stage's door)."""
    plans = [plans] if isinstance(plans, Section) else list(plans)
    for plan in plans:
        if not isinstance(plan, Section) or not isinstance(plan.arch, str):
            raise TypeError(f"{stage}() takes plans resolved for one architecture "
                            f"(pie_mlops.config.plans.resolve(..., arch=...)), got {type(plan).__name__}")
    return plans


def overlay(current: dict, values: dict) -> dict:
    """`values` over `current`; a per-architecture mapping changes only the architectures it
    names (`seeds: {bilstm: [0]}` keeps bert's), as a params file's overlay does."""
    from pie_mlops.config.vocabulary import ARCHS

    def one(old, new):
        both = isinstance(old, dict) and isinstance(new, dict) and old and new
        return {**old, **new} if both and set(old) | set(new) <= set(ARCHS) else new

    return {**current, **{k: one(current.get(k), v) for k, v in values.items()}}


def shrink(plan: S, **values) -> S:
    """`plan` with `values` over it, validated again (a test's or a job's narrower plan)."""
    section = section_of(plan)
    one = type(plan).model_validate(validate(section, overlay(plan.model_dump(), values), "overrides"))
    one._given = plan._given | frozenset(values)
    return one
