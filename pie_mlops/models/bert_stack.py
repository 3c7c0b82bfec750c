"""S BERT/MiniLM classifiers of one group as one module, for seed-parallel training on a GPU.

Their weights are stacked on a leading seed axis (`torch.func.stack_module_state`) and Hugging
Face's own forward runs over all of them at once with `vmap(functional_call)`: one kernel launch
per op for S models. Measured on an H200 (docs/seed-parallel.md), training steps pay 1.9x at 3
seeds, 3.7x at 10 and 8.2x at 30; on 2 CPU cores they cost 2-2.5x more, and prediction does not
pay on either, so `StackedBert.logits` predicts each seed with its own shipping forward.

Each seed keeps its own initialisation (the models come in built) and its own data order
(jobs/seed_training.py). Dropout is vmap's `randomness="different"`: every seed draws its own masks,
but not the very masks that seed draws when trained alone.
"""

from __future__ import annotations

import copy

import numpy as np
import torch
from torch import nn

from pie_mlops.models.common import check_stackable, stack_padded


class StackedBert(nn.Module):
    """Parameters named as in the Hugging Face model (dots as '__'), each [S, ...]."""

    arch = "bert"
    scheduled = True  # the same warm-up and decay as one BertClassifier (jobs/optim.py)

    def __init__(self, models, seeds: list[int]):
        super().__init__()
        check_stackable(models, seeds, "bert", lambda m: (m.model.config.to_dict(), m.task, m.max_length))
        first = models[0]
        self.n, self.seeds = len(models), list(seeds)
        self.task, self.num_labels, self.default_lr = first.task, first.num_labels, first.default_lr
        self.pad_id = first.pad_id
        self._names = [n for n, p in first.model.named_parameters() if p.requires_grad]
        for name in self._names:
            stacked = torch.stack([m.model.get_parameter(name).detach() for m in models]).clone()
            self.register_parameter(name.replace(".", "__"), nn.Parameter(stacked))
        self._buffer_names = [n for n, _ in first.model.named_buffers()]
        for name in self._buffer_names:  # position ids and the like: the same in every seed
            self.register_buffer(name.replace(".", "__"), first.model.get_buffer(name).detach().clone())
        # a weightless copy of the architecture for functional_call; kept off the module tree
        # so .to(device) does not try to move meta tensors
        object.__setattr__(self, "_shell", copy.deepcopy(first.model).to("meta"))
        object.__setattr__(self, "_models", list(models))

    def param_groups(self, weight_decay: float) -> list[dict]:
        # BertClassifier.param_groups, per stacked tensor: no decay on biases and LayerNorm weights
        decay, no_decay = [], []
        for name in self._names:
            p = getattr(self, name.replace(".", "__"))
            (no_decay if p.ndim - 1 < 2 else decay).append(p)
        return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]

    def write_back(self, models=None) -> None:
        """Copy each seed's trained weights into its own BertClassifier."""
        with torch.no_grad():
            for i, model in enumerate(models or self._models):
                for name in self._names:
                    model.model.get_parameter(name).copy_(getattr(self, name.replace(".", "__"))[i])

    def train(self, mode: bool = True):
        self._shell.train(mode)
        return super().train(mode)

    # -- inputs and forward ------------------------------------------------------------------
    def stack_inputs(self, enc, rows_per_seed: list[np.ndarray], device) -> tuple[dict, torch.Tensor]:
        """({input_ids, attention_mask[, token_type_ids]} each [S, B, T], valid [S, B]). A seed with
        fewer rows repeats its first row as filler (valid 0): an all-padding row would attend to
        nothing. `enc` an Encoded or a DeviceEncoded (padded on the device, common.stack_padded)."""
        s, b = len(rows_per_seed), max(len(r) for r in rows_per_seed)
        filled = [np.concatenate([r, np.repeat(r[:1], b - len(r))]) for r in rows_per_seed]
        ids, mask, types = stack_padded(enc, filled, self.pad_id)
        valid = np.zeros((s, b), dtype=np.float32)
        for i, rows in enumerate(rows_per_seed):
            valid[i, :len(rows)] = 1.0
        # a prepared additive mask [S, B, 1, 1, T], which HF takes as it is: from a 2D mask it
        # would test `mask.all()`, data-dependent control flow that vmap cannot batch
        additive = torch.where(mask, 0.0, torch.finfo(torch.float32).min)[:, :, None, None, :]
        inputs = {"input_ids": ids, "attention_mask": additive,
                  **({"token_type_ids": types} if types is not None else {})}
        return {k: v.to(device) for k, v in inputs.items()}, torch.from_numpy(valid).to(device)

    def forward(self, **inputs) -> torch.Tensor:
        """Logits [S, B, labels] for per-seed inputs [S, B, T]."""
        from torch.func import functional_call, vmap

        params = {n: getattr(self, n.replace(".", "__")) for n in self._names}
        buffers = {n: getattr(self, n.replace(".", "__")) for n in self._buffer_names}

        def one(p, x):
            return functional_call(self._shell, (p, buffers), kwargs=x).logits

        run = vmap(one, in_dims=(0, 0), randomness="different" if self.training else "error")
        if params[self._names[0]].device.type != "cuda":
            return run(params, inputs)
        # CUDA's fused attention kernels reject vmap's extra batch dimension ("attn_bias: wrong
        # shape"); the math kernel takes it (measured on an H200, bench/seed_parallel.py)
        from torch.nn.attention import SDPBackend, sdpa_kernel

        with sdpa_kernel([SDPBackend.MATH]):
            return run(params, inputs)

    def logits(self, df, batch_size: int, device, data_on_device: bool | str = "auto") -> np.ndarray:
        """Logits [S, n, labels]: the weights written back, each seed predicted with its own
        forward (vmap's prediction is slower on the CPU and on an H200)."""
        from pie_mlops.models.predict import predict_logits

        self.write_back()
        return np.stack([predict_logits(m, df, batch_size, device, data_on_device=data_on_device)
                         for m in self._models])
