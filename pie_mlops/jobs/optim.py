"""The optimizer and learning-rate schedule of one training segment (training.py restarts them
on weight rewinding).

- `adamw_warmup` (our default): AdamW with the model's weight-decay groups; models with
  `scheduled = True` (BERT) warm up linearly over `warmup_ratio` of the steps and decay to 0,
  the others (the BiLSTM) keep a constant lr.
- `adam_constant` (the paper's): torch.optim.Adam over all parameters at a constant lr, no
  weight decay, no warm-up (experiment_formatter.py and training/training.py in
  pietrotrope/AsEasyAsPIE: `optim.Adam(model.parameters(), lr=lr)`, never scheduled).
"""

from __future__ import annotations

import torch

from pie_mlops.util.errors import PieError

OPTIMIZERS = ("adamw_warmup", "adam_constant")


def check_optimizer(name: str) -> str:
    if name not in OPTIMIZERS:
        raise PieError(f"unknown optimizer {name!r}; choose one of {', '.join(OPTIMIZERS)}")
    return name


def make_optimizer(model, cfg, total_steps: int, device: torch.device):
    """(optimizer, LambdaLR) for `total_steps` steps at cfg.lr (None: the model's default_lr)."""
    lr = cfg.lr or model.default_lr
    fused = device.type in ("cuda", "cpu")  # one kernel over all parameters, not a loop per tensor
    if check_optimizer(getattr(cfg, "optimizer", "adamw_warmup")) == "adam_constant":
        params = [p for p in model.parameters() if p.requires_grad]  # a frozen embedding has no state
        opt = torch.optim.Adam(params, lr=lr, weight_decay=0.0, fused=fused)
        return opt, torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 1.0)
    opt = torch.optim.AdamW(model.param_groups(cfg.weight_decay), lr=lr, fused=fused)
    warmup = int(cfg.warmup_ratio * total_steps) if model.scheduled else 0
    lr_at = (lambda s: min((s + 1) / max(warmup, 1), max(0.0, (total_steps - s) / max(total_steps - warmup, 1)))) \
        if model.scheduled else (lambda s: 1.0)
    return opt, torch.optim.lr_scheduler.LambdaLR(opt, lr_at)
