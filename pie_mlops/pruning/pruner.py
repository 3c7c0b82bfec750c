"""The hooks a pruning schedule gives the training loop (pie_mlops/jobs/training.py drives them).

Here, not in jobs/training.py, so the pruning math (schedules.py) needs no training code
(.importlinter: pruning's math never imports pie_mlops.jobs.training).
"""

from __future__ import annotations


class Pruner:
    """What `train` calls on a pruning schedule; the base class prunes nothing."""

    def start(self, model) -> None:
        """Before the first step (pruning at initialisation happens here)."""

    def after_step(self, model) -> None:
        """After every optimizer step: re-zero pruned weights (Adam's momentum would revive them)."""

    def before_clip(self, model) -> None:
        """After backward, before the gradient norm is clipped (prune.clip_grads: unpruned zeroes
        the pruned weights' gradients here, as the paper's masked weight_orig has them)."""

    def epoch_end(self, epoch: int, model) -> int | None:
        """After an epoch's steps, before validation. Return N to restart the optimizer and
        the LR schedule over the next N epochs (weight rewinding), else None."""
        return None

    def metrics(self) -> dict:
        """Extra per-epoch metrics, e.g. the current sparsity."""
        return {}
