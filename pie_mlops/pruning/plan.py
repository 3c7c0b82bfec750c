"""The pruning plan: every (criterion, schedule, sparsity) group of a prune section, checked,
with its name (`<criterion>-<schedule>@<sparsity>`). Pure: no I/O, no tracking."""

from __future__ import annotations

from pie_mlops.util.errors import PieError
from pie_mlops.config.params import as_list

SCOPES = ("unstructured", "structured")


def format_sparsity(sparsity: float) -> str:
    """0.5 -> '0.50', 0.995 -> '0.995': two decimals unless more are needed."""
    text = f"{sparsity:.2f}"
    return text if abs(float(text) - sparsity) < 1e-12 else f"{sparsity:g}"


def group_name(criterion: str, schedule: str, sparsity: float, scope: str = "unstructured",
               threshold: str = "global") -> str:
    """`<criterion>-<schedule>@<sparsity>` (docs/design.md §1); per-layer thresholds and structured
    scope get a suffix on the schedule so their groups never collide with the default's."""
    variant = "-structured" if scope == "structured" else ("-layer" if threshold == "per_layer" else "")
    return f"{criterion}-{schedule}{variant}@{format_sparsity(sparsity)}"


def plan_jobs(params: dict) -> list[dict]:
    """Every (criterion, schedule, sparsity) to run, checked; PieError on any bad value."""
    from pie_mlops.pruning.schedules import check_sparsity

    arch, scope, threshold = params["arch"], params["scope"], params["threshold"]
    _check_names(arch, scope, threshold)
    methods, fixed = _methods(params)
    criteria, schedules = [c for c, *_ in methods + fixed], [s for _, s, *_ in methods + fixed]
    sparsities = [check_sparsity(s) for s in as_list(params["sparsities"])]
    if not ((methods and sparsities) or fixed):
        raise PieError("prune needs at least one criterion, schedule and sparsity")
    if scope == "structured":
        _check_structured(arch, criteria, schedules)
    check_prune_options(params, arch, scope)  # prunable, optimizer, impact_grads, dropout, epochs_per_step
    _check_counts(params)
    predicted_splits(params)  # at least one evaluation split
    jobs = [(c, s, sp, threshold) for c, s in methods for sp in sparsities]
    jobs += [(c, s, check_sparsity(sp), thr) for c, s, sp, thr in fixed]
    if scope == "structured" and fixed:
        raise PieError("prune.methods: whole group names (<criterion>-<schedule>[-layer]@<sparsity>) are unstructured")
    return _named_groups(jobs, scope)


def _check_names(arch: str, scope: str, threshold: str) -> None:
    """The architecture, scope and threshold are ones we know."""
    from pie_mlops.config.vocabulary import ARCHS
    from pie_mlops.pruning.masks import SCOPES as THRESHOLDS

    if arch not in ARCHS:
        raise PieError(f"unknown architecture {arch!r}; choose one of {', '.join(ARCHS)}")
    if scope not in SCOPES:
        raise PieError(f"unknown scope {scope!r}; choose one of {', '.join(SCOPES)}")
    if threshold not in THRESHOLDS:
        raise PieError(f"unknown threshold {threshold!r}; choose one of {', '.join(THRESHOLDS)}")


def _check_structured(arch: str, criteria: list[str], schedules: list[str]) -> None:
    """Structured scope: bert, the os schedule, a magnitude or impact ranking."""
    if arch != "bert":
        raise PieError(f"structured scope removes attention heads and FFN neurons: bert only, not {arch!r}")
    if set(schedules) != {"os"}:
        raise PieError("structured scope runs with the os schedule only (prune the trained model, "
                       "then recover); set prune.schedules: [os]")
    if "random" in criteria:
        raise PieError("structured scope ranks heads and neurons by magnitude or impact, not random")


def _check_counts(params: dict) -> None:
    """Step and batch counts of at least one; recovery steps of at least none."""
    for key in ("steps", "impact_batches", "impact_batch_size", "batch_size"):
        if int(params[key]) < 1:
            raise PieError(f"prune.{key} must be >= 1, got {params[key]!r}")
    if int(params["recovery_steps"]) < 0:
        raise PieError(f"prune.recovery_steps must be >= 0, got {params['recovery_steps']!r}")


def _named_groups(jobs: list[tuple], scope: str) -> list[dict]:
    """One job per group name, the first of any that share one, in order."""
    out = {}
    for c, s, sp, thr in jobs:
        name = group_name(c, s, sp, scope, thr)
        out.setdefault(name, {"criterion": c, "schedule": s, "sparsity": sp, "scope": scope, "threshold": thr,
                              "group": name})
    return list(out.values())


def _methods(params: dict) -> tuple[list[tuple[str, str]], list[tuple]]:
    """((criterion, schedule) pairs run at every sparsity, whole groups run as named): prune.methods
    if given, else criteria x schedules. A whole group, `<criterion>-<schedule>[-layer]@<sparsity>`,
    is one sparsity and its own threshold (`-layer`: per layer), so a study can add one group of
    the paper's method beside its grid (the default's magnitude-ai-layer@0.50)."""
    from pie_mlops.pruning.schedules import check_criterion, check_schedule

    if params.get("methods"):
        pairs, fixed = [], []
        for method in as_list(params["methods"]):
            text = str(method)
            head, at, sparsity = text.partition("@")
            per_layer = head.endswith("-layer")
            criterion, _, schedule = head.removesuffix("-layer").partition("-")
            if not schedule or (at and not sparsity):
                raise PieError(f"prune.methods: {method!r} is not <criterion>-<schedule> (e.g. magnitude-ft) "
                               f"or a group <criterion>-<schedule>[-layer]@<sparsity> (e.g. magnitude-ai-layer@0.5)")
            pair = (check_criterion(criterion), check_schedule(schedule))
            if at:
                try:
                    fixed.append((*pair, float(sparsity), "per_layer" if per_layer else "global"))
                except ValueError:
                    raise PieError(f"prune.methods: {method!r}: sparsity {sparsity!r} is not a number") from None
            elif per_layer:
                raise PieError(f"prune.methods: {method!r}: -layer goes with a group's sparsity "
                               f"(<criterion>-<schedule>-layer@<sparsity>); for all groups set prune.threshold")
            else:
                pairs.append(pair)
        return list(dict.fromkeys(pairs)), list(dict.fromkeys(fixed))
    return [(check_criterion(c), check_schedule(s)) for s in as_list(params["schedules"])
            for c in as_list(params["criteria"])], []


def latency_batch(plan: dict) -> int:
    """Test examples in the batch timed for latency: a quantized job's plan holds prune.latency_batch;
    a pruned job's plan never did (its params hash), so it times the schema's default batch."""
    from pie_mlops.config.schema import Prune

    return int(plan.get("latency_batch", Prune.model_fields["latency_batch"].default))


def predicted_splits(plan: dict) -> tuple[str, ...]:
    splits = tuple(s for s in ("validation", "test", "train") if plan.get(f"predict_{s}", s != "train"))
    if not set(splits) - {"train"}:
        raise PieError("prune: predict_validation and predict_test are both false; compare needs one of them")
    return splits


def check_prune_options(params: dict, arch: str, scope: str) -> None:
    """The prune section's options, before any run: PieError naming the key."""
    from pie_mlops.config.fidelity import check_options, model_kwargs
    from pie_mlops.pruning.schedules import resolve_epochs_per_step

    check_options(params, "prune")
    model_kwargs(arch, params, "prune")
    if scope == "structured" and params["prunable"] != "linear":
        raise PieError("prune.prunable: paper chooses single weights; structured scope removes heads and neurons "
                       "(set prunable: linear)")
    if params["epochs_per_step"] != "dense":
        resolve_epochs_per_step(params["epochs_per_step"])
