"""S BiLSTM classifiers of one group as one module: their weights stacked on a leading seed axis.

The S models run in lockstep on S batches (one per seed, each seed's own rows) with batched
matmuls (`bmm`), so a step costs one pass of Python and kernel overhead instead of S. The LSTM
is written out by hand: PyTorch's fused LSTM kernel takes one weight set, and vmap has no
batching rule for it (it would fall back to a loop over the seeds).

It computes what `BiLSTMClassifier.forward` computes for each seed (same gate order i, f, g, o
and the same packed-sequence semantics): a padded step leaves the state unchanged, and the
backward direction reads each sequence reversed within its own length. Both directions of all
seeds are 2S independent cells stepped together. Dropout draws from one generator per seed.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from pie_mlops.models.common import check_stackable, stack_padded


class StackedBiLSTM(nn.Module):
    """Parameters named as in BiLSTMClassifier (dots as '__'), each with a leading seed axis."""

    scheduled = False  # a constant lr, as one BiLSTMClassifier (jobs/optim.py)

    def __init__(self, models, seeds: list[int]):
        super().__init__()
        check_stackable(models, seeds, "bilstm", lambda m: (m.hparams, m.num_labels, m.task, m.embedding_source,
                                                            m.max_length))
        first = models[0]
        self.n, self.seeds = len(models), list(seeds)
        self.task, self.num_labels, self.hparams = first.task, first.num_labels, dict(first.hparams)
        self.hidden, self.layers = int(first.hparams["hidden"]), int(first.hparams["layers"])
        self.dropout = float(first.hparams["dropout"])
        self.default_lr = first.default_lr
        self.embedding = first.embedding  # frozen and the same in every model of the group
        names = [n for n, p in first.named_parameters() if p.requires_grad]
        self._names = names
        for name in names:
            stacked = torch.stack([m.get_parameter(name).detach() for m in models]).clone()
            self.register_parameter(name.replace(".", "__"), nn.Parameter(stacked))
        self.head_linears = [int(k.split(".")[1]) for k in names if k.startswith("head.") and k.endswith("weight")]
        self.generators = [torch.Generator().manual_seed(int(s)) for s in seeds]  # each seed's dropout stream

    def param_groups(self, weight_decay: float) -> list[dict]:
        # one group, every trained tensor decayed: what the stacked loop has always stepped
        return [{"params": [p for p in self.parameters() if p.requires_grad], "weight_decay": weight_decay}]

    def p(self, name: str) -> torch.Tensor:
        return getattr(self, name.replace(".", "__"))

    def write_back(self, models) -> None:
        """Copy each seed's trained weights into its own BiLSTMClassifier."""
        with torch.no_grad():
            for i, model in enumerate(models):
                for name in self._names:
                    model.get_parameter(name).copy_(self.p(name)[i])

    # -- forward --------------------------------------------------------------------------
    def stack_inputs(self, enc, rows_per_seed: list, device) -> tuple[dict, torch.Tensor]:
        """({input_ids [S, B, T], lengths [S, B]}, valid [S, B]) for S row sets, padded to the
        largest of them; filler rows have length 0 (a padded step leaves the state as it was).
        `enc` an Encoded or a DeviceEncoded (the ids padded on the device, common.stack_padded)."""
        ids, _, _ = stack_padded(enc, rows_per_seed, 0)
        lengths = np.zeros(tuple(ids.shape[:2]), dtype=np.int64)  # from the host's lengths: no device sync
        for i, rows in enumerate(rows_per_seed):
            lengths[i, :len(rows)] = enc.lengths[rows]
        lengths = torch.from_numpy(lengths)
        return {"input_ids": ids.to(device), "lengths": lengths}, (lengths > 0).to(device, torch.float32)

    def _drop(self, x: torch.Tensor) -> torch.Tensor:
        """Dropout with each seed's own generator (x: [S, ...])."""
        if not self.training or self.dropout == 0.0:
            return x
        keep = 1.0 - self.dropout
        masks = [torch.empty(x.shape[1:], dtype=x.dtype).bernoulli_(keep, generator=g) for g in self.generators]
        return x * torch.stack(masks).to(x.device) / keep

    def forward(self, input_ids: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """input_ids [S, B, T] (padded with 0), lengths [S, B] (>= 1 for real rows, 0 for filler
        rows that only even out the batch sizes) -> logits [S, B, labels]."""
        s, b, t = input_ids.shape
        device = input_ids.device
        lengths = lengths.to(device)
        pos = torch.arange(t, device=device)
        mask = pos[None, None, :] < lengths[:, :, None]  # [S, B, T]
        # reversed within each sequence's length (an involution; padding stays in place)
        rev = torch.where(mask, lengths[:, :, None] - 1 - pos[None, None, :], pos[None, None, :])
        mask2 = torch.cat([mask, mask]).transpose(1, 2).unsqueeze(-1)  # [2S, T, B, 1]
        x = self.embedding(input_ids)  # [S, B, T, E]
        final = None
        for layer in range(self.layers):
            if layer:
                x = self._drop(x)  # nn.LSTM's dropout between layers
            x, final = self._layer(x, rev, mask2, layer)
        h = final.view(2, s, b, self.hidden)  # last layer: forward and backward final states
        z = torch.cat([h[0], h[1]], dim=-1)  # [S, B, 2H], as torch.cat([h[-2], h[-1]], 1)
        last = self.head_linears[-1]
        for i in self.head_linears:
            z = torch.baddbmm(self.p(f"head.{i}.bias").unsqueeze(1), z, self.p(f"head.{i}.weight").transpose(1, 2))
            if i != last:
                z = torch.relu(z)
                if i == self.head_linears[0]:
                    z = self._drop(z)  # the head's Dropout sits after the first ReLU
        return z

    def _layer(self, x: torch.Tensor, rev: torch.Tensor, mask2: torch.Tensor, layer: int):
        """One bidirectional layer: x [S, B, T, in] -> (outputs [S, B, T, 2H], final h [2S, B, H])."""
        s, b, t, d = x.shape
        hid = self.hidden
        idx = rev.unsqueeze(-1).expand(s, b, t, d)
        xs = torch.cat([x, torch.gather(x, 2, idx)])  # [2S, B, T, in]: forward, then reversed inputs
        w_ih = torch.cat([self.p(f"lstm.weight_ih_l{layer}"), self.p(f"lstm.weight_ih_l{layer}_reverse")])
        w_hh = torch.cat([self.p(f"lstm.weight_hh_l{layer}"), self.p(f"lstm.weight_hh_l{layer}_reverse")])
        bias = torch.cat([self.p(f"lstm.bias_ih_l{layer}") + self.p(f"lstm.bias_hh_l{layer}"),
                          self.p(f"lstm.bias_ih_l{layer}_reverse") + self.p(f"lstm.bias_hh_l{layer}_reverse")])
        # input projections of every step at once, time-major; then one tensor per step (unbind:
        # its backward is one stack, where indexing would fill a zeroed copy for every step)
        xs = xs.transpose(1, 2).reshape(2 * s, t * b, d)
        proj = torch.baddbmm(bias.unsqueeze(1), xs, w_ih.transpose(1, 2)).view(2 * s, t, b, 4 * hid).unbind(1)
        w_hh_t = w_hh.transpose(1, 2).contiguous()
        h = x.new_zeros(2 * s, b, hid)
        c = x.new_zeros(2 * s, b, hid)
        outs = []
        masks = mask2.unbind(1)
        for step in range(t):
            i, f, g, o = torch.baddbmm(proj[step], h, w_hh_t).chunk(4, -1)
            c_new = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
            h_new = torch.sigmoid(o) * torch.tanh(c_new)
            m = masks[step]
            h, c = torch.where(m, h_new, h), torch.where(m, c_new, c)
            outs.append(h_new)
        out = torch.stack(outs, 2) * mask2.transpose(1, 2)  # [2S, B, T, H], zeros at padding
        fwd, bwd = out[:s], out[s:]
        bwd = torch.gather(bwd, 2, rev.unsqueeze(-1).expand(s, b, t, hid))  # back to the original order
        return torch.cat([fwd, bwd], -1), h
