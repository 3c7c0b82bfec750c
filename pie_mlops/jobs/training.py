"""The training loop: seeding, tokenise-once caching, length-bucketed batches, evaluation.

Pure of MLflow and Optuna: a tracking layer or a pruner plugs in through
`on_epoch_end(epoch, metrics)` (raise from it, e.g. optuna.TrialPruned, to stop).
Pruning schedules plug in through `pruner` (see `Pruner`): they prune before the first
step or at epoch ends, keep pruned weights at zero after every optimizer step, and may
ask for a fresh optimizer (weight rewinding).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from pie_mlops.config.schema import Train
from pie_mlops.jobs import distributed as dist
from pie_mlops.util.errors import PieError
from pie_mlops.util.metrics import accuracy, macro_f1, sigmoid, tune_threshold
from pie_mlops.models.predict import (  # noqa: F401 (callers import them from here too)
    FP32, clear_token_cache, encode_split, on_device, precision, predict_logits, resolve_device, sorted_batches,
)
from pie_mlops.models.common import Encoded
from pie_mlops.pruning.pruner import Pruner  # the hooks a schedule gives the loop
from pie_mlops.util.log import progress_disabled
from pie_mlops.util.seeding import seed_everything  # noqa: F401 (callers import it from here too)


def bucketed_batches(lengths: np.ndarray, batch_size: int, rng: np.random.Generator,
                     pool_batches: int = 50) -> list[np.ndarray]:
    """Shuffle, sort by length within pools of `pool_batches` batches, cut, shuffle the batches.

    Examples of similar length share a batch (little padding) while the order still
    changes with the seed; pools keep some mixing across lengths between epochs.
    """
    order = rng.permutation(len(lengths))
    pool = batch_size * pool_batches
    batches = []
    for start in range(0, len(order), pool):
        chunk = order[start:start + pool]
        chunk = chunk[np.argsort(lengths[chunk], kind="stable")]
        batches += [chunk[i:i + batch_size] for i in range(0, len(chunk), batch_size)]
    return [batches[i] for i in rng.permutation(len(batches))]


def targets(df: pd.DataFrame, task: str) -> np.ndarray:
    if task == "multi_label":
        return np.stack([np.asarray(v, dtype=np.float32) for v in df["labels"]])
    return df["label"].to_numpy(dtype=np.int64, copy=True)


def _loss_fn(task: str):
    if task == "multi_label":
        return torch.nn.BCEWithLogitsLoss()
    return torch.nn.CrossEntropyLoss()


UNTUNED = Train()  # a TrainConfig's defaults are train's schema defaults (one source)


@dataclass
class TrainConfig:
    epochs: int = UNTUNED.epochs
    batch_size: int = UNTUNED.batch_size
    lr: float | None = None  # None: the model's default_lr
    weight_decay: float = UNTUNED.weight_decay
    warmup_ratio: float = UNTUNED.warmup_ratio  # share of all steps, for models with scheduled = True
    max_grad_norm: float = 1.0
    seed: int = 0
    eval_batch_size: int = 128
    snapshot_epochs: tuple[int, ...] = ()  # export train-split logits after these epochs (0: before training)
    device: str = "auto"
    num_threads: int | None = None
    progress: bool = True
    max_steps: int | None = None  # stop after this many optimizer steps (os recovery fine-tune)
    optimizer: str = UNTUNED.optimizer  # or adam_constant: the paper's Adam, constant lr, no decay (optim.py)
    # For an accelerator (models/predict.py's precision and on_device); neither does anything on a CPU:
    autocast: str = FP32  # bf16 forward passes on CUDA: "auto" (BERT/MiniLM only), "bf16", "off"
    data_on_device: bool | str = "auto"  # the encoded split uploaded once ("auto": on a non-CPU device)


def job_config(plan: dict, seed: int, progress: bool, *, epochs: int | None = None,
               max_steps: int | None = None) -> TrainConfig:
    """The loop's configuration of one job's plan: a dense seed, a pruning schedule or recovery
    (`epochs`, `max_steps`), a tuning trial. The one place a TrainConfig is built from a plan."""
    from pie_mlops.config.fidelity import option
    from pie_mlops.models.predict import job_autocast

    return TrainConfig(epochs=int(plan["epochs"] if epochs is None else epochs), batch_size=int(plan["batch_size"]),
                       lr=plan["lr"], warmup_ratio=float(plan["warmup_ratio"]), weight_decay=float(plan["weight_decay"]),
                       seed=seed, snapshot_epochs=tuple(plan.get("snapshot_epochs", ())), progress=progress,
                       max_steps=max_steps, optimizer=option(plan, "optimizer"), autocast=job_autocast(plan))


@dataclass
class TrainResult:
    history: list[dict] = field(default_factory=list)
    threshold: float | None = None  # multi-label decision threshold, tuned on validation
    snapshots: dict[str, np.ndarray] = field(default_factory=dict)  # "train@epoch<k>" -> logits
    # The last validation pass's logits, of the final weights: the validation predictions reuse
    # them (same batches, same weights: bit-identical) instead of predicting the split again.
    val_logits: np.ndarray | None = None


def score(task: str, y: np.ndarray, logits: np.ndarray, threshold: float | None = None) -> float:
    """Accuracy (single-label) or macro-F1 at `threshold` (multi-label)."""
    if task == "multi_label":
        return macro_f1(y, sigmoid(logits) >= (0.5 if threshold is None else threshold))
    return accuracy(y, logits.argmax(axis=1))


def _val_metrics(model, val_df: pd.DataFrame, cfg: TrainConfig, device) -> tuple[dict, float | None, np.ndarray]:
    logits = predict_logits(model, val_df, cfg.eval_batch_size, device, cfg.progress, "validate", **_device_opts(cfg))
    return *val_metrics_from_logits(model.task, targets(val_df, model.task), logits), logits


def val_metrics_from_logits(task: str, y: np.ndarray, logits: np.ndarray) -> tuple[dict, float | None]:
    """Validation metrics (and the tuned multi-label threshold) of one model's logits."""
    loss = float(_loss_fn(task)(torch.from_numpy(logits), torch.from_numpy(y)))
    if task == "multi_label":
        t = tune_threshold(y, sigmoid(logits))
        f1 = macro_f1(y, sigmoid(logits) >= t)
        return {"val_loss": loss, "val_macro_f1": f1, "val_threshold": t, "val_score": f1}, t
    acc = accuracy(y, logits.argmax(axis=1))
    return {"val_loss": loss, "val_accuracy": acc, "val_score": acc}, None


def train(model, train_df: pd.DataFrame, val_df: pd.DataFrame | None = None, cfg: TrainConfig | None = None,
          on_epoch_end=None, pruner: Pruner | None = None) -> TrainResult:
    """Train `model` in place; returns per-epoch metrics, the tuned threshold and EL2N snapshots.

    Under torchrun (pie_mlops.jobs.distributed), each rank trains its share of every global batch
    in DistributedDataParallel; validation, snapshots and on_epoch_end metrics come from rank 0
    (other ranks' history holds only the training metrics, summed over all ranks).
    """
    cfg = cfg or TrainConfig()
    rng, device = _start(cfg)
    main = dist.is_main()
    model.to(device).train()
    loop = _Loop(model, train_df, cfg, device, pruner or Pruner())
    result = TrainResult()
    if 0 in cfg.snapshot_epochs and main:
        result.snapshots["train@epoch0"] = predict_logits(model, train_df, cfg.eval_batch_size, device,
                                                          **_device_opts(cfg))
    for epoch in range(1, cfg.epochs + 1):
        start = time.perf_counter()
        bar = tqdm(bucketed_batches(loop.enc.lengths, cfg.batch_size, rng), desc=f"epoch {epoch}/{cfg.epochs}",
                   disable=progress_disabled(cfg.progress) if main else True, leave=False)
        total_loss, seen = loop.epoch(bar)
        elapsed = time.perf_counter() - start
        metrics = {"epoch": epoch, "train_loss": total_loss / max(seen, 1), "epoch_s": elapsed,
                   "train_ex_s": seen / elapsed, "lr": loop.sched.get_last_lr()[0]}
        _epoch_end(loop, epoch, metrics, result, train_df, val_df if main else None)
        result.history.append(metrics)
        if on_epoch_end is not None:
            on_epoch_end(epoch, metrics)
        if loop.at_max_steps():
            break
    if model.task == "multi_label" and result.threshold is None:
        result.threshold = 0.5  # no validation split to tune on
    return result


def _device_opts(cfg: TrainConfig) -> dict:
    return {"autocast": cfg.autocast, "data_on_device": cfg.data_on_device}


def configure(cfg: TrainConfig) -> None:
    """Check the config's counts and set torch's threads (`train`, and seed_training's `train_seeds`)."""
    if cfg.epochs < 1 or cfg.batch_size < 1:
        raise PieError(f"epochs and batch_size must be positive, got {cfg.epochs} and {cfg.batch_size}")
    if cfg.num_threads:
        torch.set_num_threads(cfg.num_threads)


def _start(cfg: TrainConfig) -> tuple[np.random.Generator, torch.device]:
    """Check the config, set threads and seeds; the data-order stream and the device."""
    configure(cfg)
    seed_everything(cfg.seed)
    rng = np.random.default_rng(cfg.seed)  # data order: its own stream, independent of dropout draws
    device = dist.device() if dist.world_size() > 1 and str(cfg.device) == "auto" else resolve_device(cfg.device)
    return rng, device


class _Loop:
    """One training run's moving parts: the model (wrapped for DDP), its encoded split, optimizer
    and schedule, the pruner's hooks, and the optimizer steps taken so far."""

    def __init__(self, model, train_df: pd.DataFrame, cfg: TrainConfig, device, pruner: Pruner):
        self.model, self.cfg, self.device, self.pruner = model, cfg, device, pruner
        # on an accelerator the split and its targets stay there: a batch moves only its row indices
        self.enc = on_device(encode_split(model, train_df), device, cfg.data_on_device)
        self.y_all = torch.from_numpy(targets(train_df, model.task))
        self.y_dev = None if isinstance(self.enc, Encoded) else self.y_all.to(device)
        self.autocast = precision(model, device, cfg.autocast)  # none on a CPU: fp32 exactly
        self.loss_fn = _loss_fn(model.task)
        self.steps_per_epoch = -(-len(train_df) // cfg.batch_size)
        pruner.start(model)
        self.net = dist.wrap(model)  # the model itself in a single process
        self.opt, self.sched = self.fresh_optimizer(cfg.epochs)
        self.params = [p for g in self.opt.param_groups for p in g["params"]]
        self.steps = 0

    def fresh_optimizer(self, epochs: int):
        # cfg.optimizer: adamw_warmup (ours) or adam_constant (the paper's)
        from pie_mlops.jobs.optim import make_optimizer

        total = self.steps_per_epoch * epochs
        cfg = self.cfg
        return make_optimizer(self.model, cfg, min(total, cfg.max_steps) if cfg.max_steps else total, self.device)

    def at_max_steps(self) -> bool:
        return bool(self.cfg.max_steps and self.steps >= self.cfg.max_steps)

    def epoch(self, batches) -> tuple[float, int]:
        """One pass over `batches` (to cfg.max_steps): the summed loss and the examples seen,
        over all ranks."""
        model, device = self.model, self.device
        total_loss, seen = 0.0, 0
        for batch in batches:
            rows, counted, weight = dist.shard(batch)  # the whole batch, 1.0, in a single process
            with self.autocast:
                logits = self.net(**model.batch_inputs(self.enc, rows, device))
            y = self.y_all[rows].to(device) if self.y_dev is None else self.y_dev[torch.from_numpy(rows).to(device)]
            loss = self.loss_fn(logits.float(), y)  # fp32 already on a CPU (.float() returns it as it is)
            (loss if weight == 1.0 else loss * weight).backward()
            self.pruner.before_clip(model)
            torch.nn.utils.clip_grad_norm_(self.params, self.cfg.max_grad_norm)
            self.opt.step()
            self.sched.step()
            self.opt.zero_grad(set_to_none=True)
            self.pruner.after_step(model)
            total_loss += float(loss.detach()) * counted
            seen += counted
            self.steps += 1
            if self.at_max_steps():
                break
        if dist.world_size() > 1:
            total_loss, seen = dist.all_sum([total_loss, seen])
        return total_loss, seen


def _epoch_end(loop: _Loop, epoch: int, metrics: dict, result: TrainResult, train_df: pd.DataFrame,
               val_df: pd.DataFrame | None) -> None:
    """After an epoch: the pruner's step (a fresh optimizer if it rewinds) and metrics, then
    validation and a train snapshot (rank 0 only: `val_df` None elsewhere), the model back in
    train mode."""
    model, cfg = loop.model, loop.cfg
    restart = loop.pruner.epoch_end(epoch, model)
    if restart:
        loop.opt, loop.sched = loop.fresh_optimizer(restart)
    metrics.update(loop.pruner.metrics())
    if val_df is not None and len(val_df):
        val, result.threshold, result.val_logits = _val_metrics(model, val_df, cfg, loop.device)
        metrics.update(val)
    if epoch in cfg.snapshot_epochs and dist.is_main():
        result.snapshots[f"train@epoch{epoch}"] = predict_logits(model, train_df, cfg.eval_batch_size, loop.device,
                                                                 **_device_opts(cfg))
    model.train()


def accumulate_gradients(model, df: pd.DataFrame, n_batches: int = 10, batch_size: int = 10, seed: int = 0,
                         device="auto", aggregate: str = "sum") -> dict[str, torch.Tensor]:
    """Sum of the loss gradients over `n_batches` seeded random batches of `df`, by parameter name;
    `aggregate="last"`: the last batch's gradient alone, as the paper's code leaves it (it zeroes
    the gradients before each of its 10 batches).

    The impact criterion |w * dL/dw| reads these (the paper used 10 batches of 10). The model
    is in eval mode while it runs, so dropout does not add noise to the scores.
    """
    if n_batches < 1 or batch_size < 1:
        raise PieError(f"impact needs n_batches and batch_size >= 1, got {n_batches} and {batch_size}")
    if aggregate not in ("sum", "last"):
        raise PieError(f"impact gradients aggregate as sum or last, got {aggregate!r}")
    device = resolve_device(device)
    model.to(device)
    was_training = model.training
    model.eval()
    enc = encode_split(model, df)
    y_all = torch.from_numpy(targets(df, model.task))
    loss_fn = _loss_fn(model.task)
    rng = np.random.default_rng(seed)
    model.zero_grad(set_to_none=True)
    for _ in range(n_batches):
        rows = rng.choice(len(df), size=min(batch_size, len(df)), replace=False)
        if aggregate == "last":
            model.zero_grad(set_to_none=True)
        loss = loss_fn(model(**model.batch_inputs(enc, rows, device)), y_all[rows].to(device))
        loss.backward()
    grads = {name: p.grad.detach().clone() for name, p in model.named_parameters() if p.grad is not None}
    model.zero_grad(set_to_none=True)
    model.train(was_training)
    return grads
