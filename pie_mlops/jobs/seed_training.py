"""Seed-parallel training and prediction: a group's S models as one batched computation.

The same loop as `pie_mlops.jobs.training.train`, for S models at once: the BiLSTM as a stacked
bmm module (models/bilstm_stack.py), BERT/MiniLM through vmap (models/bert_stack.py, for a
GPU). Each seed keeps its own initialisation (the models come in built), its own data order (a
numpy generator seeded with its seed, the very batches `train` would draw) and its own dropout
masks. The S batches of a step are padded to one shape; filler rows carry no loss. AdamW is
elementwise, so one AdamW over the stacked weights is S AdamWs, with one lr schedule for all
(optim.py); gradient clipping is done per seed, as `clip_grad_norm_` does for each model alone.
Pure of MLflow: the caller tracks and registers each seed afterwards.
"""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from pie_mlops.util.log import progress_disabled
from pie_mlops.models.bilstm_stack import StackedBiLSTM
from pie_mlops.models.common import Encoded, as_tensor
from pie_mlops.models.predict import on_device
from pie_mlops.jobs.optim import make_optimizer
from pie_mlops.jobs.training import (
    TrainConfig,
    configure,
    TrainResult,
    precision,
    bucketed_batches,
    encode_split,
    resolve_device,
    sorted_batches,
    targets,
    val_metrics_from_logits,
)


@torch.inference_mode()
def predict_logits_stacked(stack, df: pd.DataFrame, model, batch_size: int = 128,
                           device="auto", data_on_device: bool | str = "auto") -> np.ndarray:
    """Logits [S, n, labels] of every seed for every row of `df`, in one pass over the data
    (a StackedBert predicts seed by seed: models/bert_stack.py); `data_on_device` as
    predict_logits' (the split uploaded once, each batch padded there)."""
    device = resolve_device(device)
    if not isinstance(stack, StackedBiLSTM):
        return stack.logits(df, batch_size, device, data_on_device)
    was_training = stack.training
    stack.to(device).eval()
    enc = on_device(encode_split(model, df), device, data_on_device)
    out = np.empty((stack.n, len(df), stack.num_labels), dtype=np.float32)
    for rows in sorted_batches(enc.lengths, batch_size):
        ids, _, _ = enc.padded(rows, 0)
        ids = as_tensor(ids, device).expand(stack.n, -1, -1)
        lengths = torch.from_numpy(enc.lengths[rows]).expand(stack.n, -1)
        out[:, rows] = stack(ids, lengths).float().cpu().numpy()
    stack.train(was_training)
    return out


def _seed_losses(task: str, logits: torch.Tensor, y: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """Each seed's mean loss over its real rows -> [S] (CrossEntropy or BCE-with-logits, as train)."""
    s, b, c = logits.shape
    if task == "multi_label":
        each = torch.nn.functional.binary_cross_entropy_with_logits(logits, y, reduction="none").mean(-1)
    else:
        each = torch.nn.functional.cross_entropy(logits.reshape(s * b, c), y.reshape(-1),
                                                 reduction="none").view(s, b)
    return (each * valid).sum(1) / valid.sum(1)


def _clip_per_seed(params: list[torch.Tensor], max_norm: float) -> None:
    """clip_grad_norm_ for each seed alone: one norm per seed over all of its gradients."""
    sq = sum(p.grad.pow(2).flatten(1).sum(1) for p in params)
    coef = (max_norm / (sq.sqrt() + 1e-6)).clamp(max=1.0)
    for p in params:
        p.grad.mul_(coef.view(-1, *([1] * (p.dim() - 1))))


def stack_models(models: list, seeds: list[int]):
    """The stacked module for these models: StackedBiLSTM or StackedBert."""
    if models and getattr(models[0], "arch", None) == "bert":
        from pie_mlops.models.bert_stack import StackedBert

        return StackedBert(models, seeds)
    return StackedBiLSTM(models, seeds)


def train_seeds(models: list, seeds: list[int], train_df: pd.DataFrame, val_df: pd.DataFrame | None = None,
                cfg: TrainConfig | None = None) -> tuple[list[TrainResult], object]:
    """Train the models of seeds `seeds` together, in place; returns one TrainResult per seed
    (history, threshold, snapshots as `train` makes them) and the stacked module (for predicting)."""
    cfg = cfg or TrainConfig()
    configure(cfg)
    device = resolve_device(cfg.device)
    model0, task, s = models[0], models[0].task, len(models)
    stack = stack_models(models, seeds).to(device).train()
    rngs = [np.random.default_rng(seed) for seed in seeds]  # each seed's data order, as train() draws it
    loop = _StackLoop(stack, model0, train_df, cfg, device)
    results = [TrainResult() for _ in seeds]
    y_val = targets(val_df, task) if val_df is not None and len(val_df) else None
    if 0 in cfg.snapshot_epochs:
        loop.snapshot(results, train_df, "train@epoch0")
    for epoch in range(1, cfg.epochs + 1):
        start = time.perf_counter()
        per_seed = [bucketed_batches(loop.enc.lengths, cfg.batch_size, rng) for rng in rngs]
        total, seen = loop.epoch(tqdm(list(zip(*per_seed)), desc=f"epoch {epoch}/{cfg.epochs} ({s} seeds)",
                                      disable=progress_disabled(cfg.progress), leave=False))
        share = (time.perf_counter() - start) / s  # each seed's share of the group's epoch
        val_logits = predict_logits_stacked(stack, val_df, model0, cfg.eval_batch_size, device,
                                            cfg.data_on_device) if y_val is not None else None
        for i, result in enumerate(results):
            metrics = {"epoch": epoch, "train_loss": float(total[i]) / max(seen[i], 1), "epoch_s": share,
                       "train_ex_s": seen[i] / share, "lr": loop.sched.get_last_lr()[0]}
            if val_logits is not None:
                val, result.threshold = val_metrics_from_logits(task, y_val, val_logits[i])
                result.val_logits = val_logits[i]  # the last epoch's: the final weights' (TrainResult)
                metrics.update(val)
            result.history.append(metrics)
        if epoch in cfg.snapshot_epochs:
            loop.snapshot(results, train_df, f"train@epoch{epoch}")
        if loop.at_max_steps():
            break
    for result in results:
        if task == "multi_label" and result.threshold is None:
            result.threshold = 0.5  # no validation split to tune on
    stack.write_back(models)
    return results, stack


class _StackLoop:
    """A seed stack's moving parts: the stacked module, its encoded split, one optimizer and
    schedule over the stacked weights, and the optimizer steps taken so far."""

    def __init__(self, stack, model0, train_df: pd.DataFrame, cfg: TrainConfig, device):
        self.stack, self.model0, self.cfg, self.device, self.task = stack, model0, cfg, device, model0.task
        # cfg.data_on_device (an accelerator): the split and its targets uploaded once, as train's
        # loop does; each step's S batches are padded there and only row indices travel
        self.enc = on_device(encode_split(model0, train_df), device, cfg.data_on_device)
        self.y_all = torch.from_numpy(targets(train_df, self.task))
        self.y_dev = None if isinstance(self.enc, Encoded) else self.y_all.to(device)
        self.params = [p for p in stack.parameters() if p.requires_grad]
        total_steps = -(-len(train_df) // cfg.batch_size) * cfg.epochs
        self.opt, self.sched = make_optimizer(stack, cfg, min(total_steps, cfg.max_steps) if cfg.max_steps
                                              else total_steps, device)
        self.steps = 0

    def at_max_steps(self) -> bool:
        return bool(self.cfg.max_steps and self.steps >= self.cfg.max_steps)

    def epoch(self, batches) -> tuple[torch.Tensor, np.ndarray]:
        """One pass over `batches` (each: one row batch per seed), to cfg.max_steps: each seed's
        summed loss and examples seen."""
        s, device = self.stack.n, self.device
        total, seen = torch.zeros(s, dtype=torch.float64), np.zeros(s)
        for batch in batches:
            inputs, valid = self.stack.stack_inputs(self.enc, list(batch), device)
            with precision(self.model0, device, self.cfg.autocast):  # none on a CPU
                logits = self.stack(**inputs).float()
            losses = _seed_losses(self.task, logits, self.stacked_targets(batch, valid), valid)
            losses.sum().backward()  # seeds share no weights: each gets its own loss's gradient
            _clip_per_seed(self.params, self.cfg.max_grad_norm)
            self.opt.step()
            self.sched.step()
            self.opt.zero_grad(set_to_none=True)
            counts = np.array([len(r) for r in batch])
            total += losses.detach().double().cpu() * torch.from_numpy(counts)
            seen += counts
            self.steps += 1
            if self.at_max_steps():
                break
        return total, seen

    def stacked_targets(self, batch, valid: torch.Tensor) -> torch.Tensor:
        """The S batches' targets [S, B, ...] on the device, zeros in the filler rows (valid 0)."""
        s, b = valid.shape
        if self.y_dev is None:  # on the host, then one copy
            pad = torch.zeros((s, b) + tuple(self.y_all.shape[1:]), dtype=self.y_all.dtype)
            for i, rows in enumerate(batch):
                pad[i, :len(rows)] = self.y_all[rows]
            return pad.to(self.device)
        idx = np.zeros((s, b), dtype=np.int64)  # filler rows gather row 0, then zeroed
        for i, rows in enumerate(batch):
            idx[i, :len(rows)] = rows
        y = self.y_dev[torch.from_numpy(idx).to(self.device, non_blocking=True)]
        real = (valid > 0).view(s, b, *([1] * (y.dim() - 2)))
        return torch.where(real, y, torch.zeros((), dtype=y.dtype, device=self.device))

    def snapshot(self, results: list[TrainResult], train_df: pd.DataFrame, name: str) -> None:
        """Every seed's train-split logits now, as snapshot `name`."""
        logits = predict_logits_stacked(self.stack, train_df, self.model0, self.cfg.eval_batch_size, self.device,
                                        self.cfg.data_on_device)
        for result, each in zip(results, logits):
            result.snapshots[name] = each
