"""The paper's method against our own choices: the options train and prune share.

Each setting where we differ from the paper (Tropeano et al. 2025; docs/paper-fidelity.md) is
a named option. `OURS` holds our defaults; profiles/paper.yaml sets the paper's values. A run's
identity (params_hash) holds an option only when it differs from ours, so the runs of stores
made before these options existed keep their identity. Pure: no I/O.
"""

from __future__ import annotations

from typing import Literal, get_args

from pie_mlops.util.errors import PieError

# The option types; pie_mlops/config/schema.py types the params with them (ours first: the default).
Prunable = Literal["linear", "paper"]  # prune: Linear/LSTM matrices, or the paper's leaf weights
Optimizer = Literal["adamw_warmup", "adam_constant"]  # train and prune (pie_mlops/jobs/optim.py)
ImpactGrads = Literal["sum", "last"]  # prune: the 10 batches' gradients summed, or the last one (paper)
ClipGrads = Literal["all", "unpruned"]  # prune: clip the norm over every gradient, or the surviving weights' (paper)
# option -> (our default, the allowed values; None: any number or null)
OPTIONS = {
    "prunable": ("linear", get_args(Prunable)),
    "optimizer": ("adamw_warmup", get_args(Optimizer)),
    "impact_grads": ("sum", get_args(ImpactGrads)),
    "clip_grads": ("all", get_args(ClipGrads)),
    "dropout": (None, None),  # bilstm only; null: the architecture's default (0.1); the paper's is 0
}
OURS = {k: ours for k, (ours, _) in OPTIONS.items()}
# keys that may also be given per dataset: {rotten_tomatoes: 128, bbc_news: 512}
PER_DATASET = ("max_length",)


def check_options(params: dict, section: str) -> None:
    """PieError naming the key on a value none of the options allows."""
    for key, (_, allowed) in OPTIONS.items():
        if key not in params:
            continue
        value = params[key]
        if allowed is None:
            if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))
                                      or not 0.0 <= float(value) < 1.0):
                raise PieError(f"{section}.{key} must be null or a number in [0, 1), got {value!r}")
        elif value not in allowed:
            raise PieError(f"{section}.{key} must be one of {', '.join(allowed)}, got {value!r}")


def option(plan: dict, key: str):
    """An option's value in a job's plan, which holds it only where it is not ours (identity_extras)."""
    return plan.get(key, OURS[key])


def identity_extras(params: dict) -> dict:
    """The options of `params` whose value is not ours (they enter the run's params and hash)."""
    return {k: params[k] for k, (ours, _) in OPTIONS.items() if k in params and params[k] != ours}


def model_kwargs(arch: str, plan: dict, section: str) -> dict:
    """Keyword arguments of build_model from a resolved plan: max_length, and the BiLSTM's dropout."""
    kwargs = {"max_length": int(plan["max_length"])}
    dropout = plan.get("dropout")
    if dropout is not None:
        if arch != "bilstm":
            raise PieError(f"{section}.dropout applies to the bilstm; {arch} keeps its pretrained config's "
                           f"dropout (give {{bert: null, bilstm: {dropout}}})")
        kwargs["dropout"] = float(dropout)
    return kwargs


def per_dataset(key: str, value, dataset: str, archs: tuple[str, ...], section: str):
    """A PER_DATASET key's mapping dataset -> value resolved for `dataset`; anything else unchanged
    (a mapping keyed by architecture is for_arch's)."""
    if key not in PER_DATASET or not isinstance(value, dict) or set(value) & set(archs):
        return value
    if dataset not in value:
        raise PieError(f"{section}.{key} gives one value per dataset but none for {dataset!r} "
                       f"(has: {', '.join(map(str, value))})")
    return value[dataset]

