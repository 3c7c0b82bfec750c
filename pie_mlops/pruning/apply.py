"""One pruned model from one plan: the schedules and structured surgery wired to the training loop.

No files and no MLflow here (the prune stage does those): a model, a plan and the data
splits in, the pruned model (in place), its accounting and its decision threshold out.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass

import torch

from pie_mlops.config.fidelity import option
from pie_mlops.pruning.plan import latency_batch
from pie_mlops.util.errors import PieError


@dataclass
class Outcome:
    accounting: dict  # achieved_sparsity, per_layer, nonzero_params, total_params, latency_ms, ...
    threshold: float | None  # multi-label decision threshold, tuned on validation
    val_logits: object = None  # a training schedule's last validation logits (TrainResult.val_logits)


def prune_model(model, plan: dict, seed: int, splits: dict, *, task: str, progress: bool = True,
                on_epoch_end=None) -> Outcome:
    """Prune `model` in place as `plan` says (criterion, schedule, sparsity, scope, ...)."""
    from pie_mlops.pruning.schedules import ScheduledPruning, one_shot
    from pie_mlops.jobs.training import accumulate_gradients, job_config, train

    def grads_fn(m):
        return accumulate_gradients(m, splits["train"], int(plan["impact_batches"]),
                                    int(plan["impact_batch_size"]), seed=seed,
                                    aggregate=option(plan, "impact_grads"))

    kwargs = {"scope": plan["threshold"], "include": plan.get("include"), "exclude": plan.get("exclude"),
              "seed": seed, "grads_fn": grads_fn, "prunable": option(plan, "prunable"),
              "clip_grads": option(plan, "clip_grads")}
    threshold, structure, val_logits = None, None, None
    if plan["schedule"] == "os":
        recovery = int(plan.get("recovery_steps") or 0)
        if plan["scope"] == "structured":
            from pie_mlops.pruning.structured import prune_structured

            grads = grads_fn(model) if plan["criterion"] == "impact" else None
            structure = prune_structured(model, plan["sparsity"], plan["criterion"], grads=grads)
            pruner = None
        else:
            pruner = one_shot(model, plan["criterion"], plan["sparsity"], **kwargs)
        if recovery:
            result = train(model, splits["train"], splits["validation"],
                           job_config(plan, seed, progress, epochs=1, max_steps=recovery),
                           on_epoch_end=on_epoch_end, pruner=pruner)
            threshold, val_logits = result.threshold, result.val_logits
    else:
        pruner = ScheduledPruning(plan["criterion"], plan["schedule"], plan["sparsity"],
                                  epochs_per_step=int(plan["epochs_per_step"]), steps=int(plan["steps"]), **kwargs)
        result = train(model, splits["train"], splits["validation"], job_config(plan, seed, progress, epochs=pruner.epochs),
                       on_epoch_end=on_epoch_end, pruner=pruner)
        threshold, val_logits = result.threshold, result.val_logits
    if task == "multi_label" and threshold is None:
        threshold = _validation_threshold(model, splits["validation"])
    accounting = _accounting(model, plan, pruner, structure, splits["test"].head(latency_batch(plan)))
    target = float(plan["sparsity"])
    if plan["scope"] == "unstructured" and abs(accounting["achieved_sparsity"] - target) > 1e-3:
        raise PieError(f"{plan['group']}: achieved sparsity {accounting['achieved_sparsity']:.4f} misses the "
                       f"target {target} by more than 0.1 points")
    return Outcome(accounting, threshold, val_logits)


def _validation_threshold(model, val_df) -> float:
    from pie_mlops.util.metrics import sigmoid, tune_threshold
    from pie_mlops.jobs.training import predict_logits, targets

    return float(tune_threshold(targets(val_df, "multi_label"), sigmoid(predict_logits(model, val_df))))


def _accounting(model, plan: dict, pruner, structure: dict | None, batch_df) -> dict:
    from pie_mlops.pruning.masks import sparsity_report
    from pie_mlops.pruning.prunable import prunable_set

    if pruner is not None:
        report = pruner.report(model)
    else:  # structured: the share of the prunable weights' original count that is gone
        report = sparsity_report(prunable_set(model, option(plan, "prunable"), plan.get("include"),
                                              plan.get("exclude")))
    params = [p for p in model.parameters()]
    out = {"achieved_sparsity": float(report["achieved_sparsity"]),
           "per_layer": {k: float(v) for k, v in report["per_layer"].items()},
           "prunable_nonzero": int(report["nonzero"]), "prunable_total": int(report["total"]),
           "nonzero_params": int(sum(int(torch.count_nonzero(p)) for p in params)),
           "total_params": int(sum(p.numel() for p in params)),
           "latency_ms": cpu_latency_ms(model, batch_df)}
    if structure is not None:
        out.update({k: v for k, v in structure.items() if isinstance(v, (int, float))})
        out["structure"] = {k: v for k, v in structure.items() if isinstance(v, list)}
        # structured sparsity: the share of the prunable (encoder) weights physically removed;
        # the embeddings never shrink, so the whole-model share is reported apart
        before, after = structure["prunable_params_before"], structure["prunable_params_after"]
        out["achieved_sparsity"] = 1.0 - after / before
        out["model_params_removed"] = 1.0 - structure["params_after"] / structure["params_before"]
    return out


def cpu_latency_ms(model, batch_df, repeats: int = 3) -> float:
    """Median CPU milliseconds to predict one fixed batch (after one warm-up), then back to its device."""
    from pie_mlops.jobs.training import predict_logits

    device = next(model.parameters()).device
    try:
        predict_logits(model, batch_df, batch_size=len(batch_df), device="cpu")
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            predict_logits(model, batch_df, batch_size=len(batch_df), device="cpu")
            times.append(time.perf_counter() - start)
    finally:
        model.to(device)
    return 1000.0 * statistics.median(times)
