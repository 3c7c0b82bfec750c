"""Pruning schedules, as `Pruner`s (pruning/pruner.py) that the training loop drives.

- `ft`: prune at the ends of epochs E, 2E, ..., steps*E and fine-tune in between; (steps+1)*E
  epochs in all. Each step removes the same share of the surviving weights, so the last
  step lands exactly on the target.
- `wr`: like `ft`, but after each step every weight rewinds to its value at the start of
  training (pruned ones stay zero) and the optimizer and LR schedule restart.
- `ai`: prune once before the first step, then train E epochs.
- `os`: prune a trained model once (`one_shot`), then optionally fine-tune a few steps
  with the masks held (the returned pruner keeps them).

Pure tensor code: the gradients the impact criterion needs come from a callable the
caller passes in (`grads_fn(model) -> {name: grad}`), so nothing here touches data.
"""

from __future__ import annotations

from typing import Callable, Sequence

import torch

from pie_mlops.util.errors import PieError
from pie_mlops.pruning.criteria import CRITERIA, criterion_scores
from pie_mlops.pruning.masks import SCOPES, apply_masks, select_masks, sparsity_report
from pie_mlops.pruning.prunable import check_prunable, prunable_set
from pie_mlops.pruning.pruner import Pruner
from pie_mlops.config.vocabulary import SCHEDULES

ITERATIVE = ("ft", "wr")


def step_sparsities(target: float, steps: int) -> list[float]:
    """The sparsity after each of `steps` steps: the kept share shrinks geometrically, so every
    step prunes the same fraction of what survived, and the last step is exactly `target`."""
    check_sparsity(target)
    if steps < 1:
        raise PieError(f"pruning steps must be >= 1, got {steps}")
    return [1.0 - (1.0 - target) ** (k / steps) for k in range(1, steps)] + [float(target)]


def schedule_epochs(schedule: str, epochs_per_step: int, steps: int = 3) -> int:
    """Total training epochs of a schedule: (steps + 1) * E for ft/wr, E for ai, 0 for os."""
    check_schedule(schedule)
    if epochs_per_step < 1:
        raise PieError(f"epochs_per_step must be >= 1, got {epochs_per_step}")
    return {"ft": (steps + 1) * epochs_per_step, "wr": (steps + 1) * epochs_per_step,
            "ai": epochs_per_step, "os": 0}[schedule]


def check_sparsity(sparsity) -> float:
    try:
        value = float(sparsity)
    except (TypeError, ValueError):
        raise PieError(f"sparsity must be a number in [0, 1), got {sparsity!r}") from None
    if not 0.0 <= value < 1.0:
        raise PieError(f"sparsity must be in [0, 1), got {sparsity!r} (0.9 means 90% of the weights removed)")
    return value


def check_schedule(schedule: str) -> str:
    if schedule not in SCHEDULES:
        raise PieError(f"unknown schedule {schedule!r}; choose one of {', '.join(SCHEDULES)}")
    return schedule


def check_criterion(criterion: str) -> str:
    if criterion not in CRITERIA:
        raise PieError(f"unknown criterion {criterion!r}; choose one of {', '.join(CRITERIA)}")
    return criterion


class MaskedPruning(Pruner):
    """Holds keep-masks over the prunable weights and keeps pruned weights at exactly zero."""

    def __init__(self, criterion: str, *, scope: str = "global", include: Sequence[str] | None = None,
                 exclude: Sequence[str] | None = None, seed: int = 0,
                 grads_fn: Callable[[torch.nn.Module], dict] | None = None, prunable: str = "linear",
                 clip_grads: str = "all"):
        self.criterion = check_criterion(criterion)
        if scope not in SCOPES:
            raise PieError(f"unknown threshold scope {scope!r}; choose one of {', '.join(SCOPES)}")
        if criterion == "impact" and grads_fn is None:
            raise PieError("the impact criterion needs gradients: pass grads_fn")
        self.scope, self.include, self.exclude, self.seed, self.grads_fn = scope, include, exclude, seed, grads_fn
        self.prunable = check_prunable(prunable)  # linear (ours) or paper (LayerNorm gammas, pooler too)
        if clip_grads not in ("all", "unpruned"):
            raise PieError(f"prune.clip_grads must be one of all, unpruned, got {clip_grads!r}")
        self.clip_unpruned = clip_grads == "unpruned"
        self.masks: dict[str, torch.Tensor] = {}
        self.steps_done = 0
        self._weights = None

    def weights(self, model) -> dict[str, torch.nn.Parameter]:
        if self._weights is None:
            self._weights = prunable_set(model, self.prunable, self.include, self.exclude)
        return self._weights

    def prune_to(self, model, sparsity: float) -> None:
        """Prune until `sparsity` of the prunable weights are zero; earlier pruned ones stay pruned."""
        weights = self.weights(model)
        grads = self.grads_fn(model) if self.criterion == "impact" else None
        # random draws fresh scores per step (seeded), like re-sampling survivors in the paper
        scores = criterion_scores(weights, self.criterion, grads=grads, seed=self.seed * 1000 + self.steps_done)
        pruned = {name: ~keep for name, keep in self.masks.items()} or None
        self.masks = select_masks(scores, [check_sparsity(sparsity)], self.scope, already_pruned=pruned)[0]
        apply_masks(weights, self.masks)
        self.steps_done += 1

    def after_step(self, model) -> None:
        if self.masks:
            apply_masks(self.weights(model), self.masks)

    def before_clip(self, model) -> None:
        if self.clip_unpruned and self.masks:
            weights = self.weights(model)
            with torch.no_grad():
                for name, keep in self.masks.items():
                    grad = weights[name].grad
                    if grad is not None:
                        grad.masked_fill_(~keep.to(grad.device, torch.bool), 0.0)

    def report(self, model) -> dict:
        return sparsity_report(self.weights(model))

    def metrics(self) -> dict:
        if self._weights is None:
            return {}
        return {"sparsity": sparsity_report(self._weights)["achieved_sparsity"]}


class ScheduledPruning(MaskedPruning):
    """The paper's schedules (ft, wr, ai) driven by training.train's hooks."""

    def __init__(self, criterion: str, schedule: str, sparsity: float, *, epochs_per_step: int = 1,
                 steps: int = 3, **kwargs):
        super().__init__(criterion, **kwargs)
        if check_schedule(schedule) == "os":
            raise PieError("os prunes a trained model: use one_shot(), not a training schedule")
        self.schedule, self.target = schedule, check_sparsity(sparsity)
        self.epochs_per_step, self.n_steps = epochs_per_step, steps
        self.epochs = schedule_epochs(schedule, epochs_per_step, steps)
        self.targets = step_sparsities(self.target, steps) if schedule in ITERATIVE else [self.target]
        self.initial: dict[str, torch.Tensor] | None = None

    def start(self, model) -> None:
        if self.schedule == "wr":  # rewinding needs the values every weight started from
            self.initial = {n: p.detach().clone() for n, p in model.named_parameters()}
        if self.schedule == "ai":
            self.prune_to(model, self.target)

    def epoch_end(self, epoch: int, model) -> int | None:
        if self.schedule not in ITERATIVE or epoch % self.epochs_per_step:
            return None
        step = epoch // self.epochs_per_step
        if step > self.n_steps:
            return None
        self.prune_to(model, self.targets[step - 1])
        if self.schedule == "wr":
            self.rewind(model)
            return self.epochs_per_step  # a fresh optimizer and LR schedule for the next segment
        return None

    @torch.no_grad()
    def rewind(self, model) -> None:
        for name, p in model.named_parameters():
            if name in self.initial:
                p.copy_(self.initial[name])
        apply_masks(self.weights(model), self.masks)


def one_shot(model, criterion: str, sparsity: float, **kwargs) -> MaskedPruning:
    """Prune a trained model once; the returned pruner holds the masks for a recovery fine-tune."""
    pruner = MaskedPruning(criterion, **kwargs)
    pruner.prune_to(model, sparsity)
    return pruner


def resolve_epochs_per_step(value, dense_epochs: int | str | None = None) -> int:
    """E of the ft/wr/ai schedules: a number, or `dense` for the dense model's own epochs
    (the paper's: ft/wr train 4E in all and ai trains E, E = the dense epochs;
    experiment_formatter.py in pietrotrope/AsEasyAsPIE)."""
    if value == "dense":
        if dense_epochs is None or not str(dense_epochs).isdigit():
            raise PieError(f"epochs_per_step: dense needs the dense model's epochs; its run logged "
                           f"epochs={dense_epochs!r} (re-run `pie-mlops train`)")
        value = int(dense_epochs)
    try:
        epochs = int(value)
    except (TypeError, ValueError):
        raise PieError(f"epochs_per_step must be a positive integer or 'dense', got {value!r}") from None
    if epochs < 1 or epochs != float(value):
        raise PieError(f"epochs_per_step must be a positive integer or 'dense', got {value!r}")
    return epochs
