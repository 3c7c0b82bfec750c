"""What every model shares: tokenised splits as flat arrays, safe save/load helpers.

A tokenised split is kept as one flat id array plus offsets, not a list of per-example
arrays, so that building a padded batch is a few vectorised numpy ops (no Python loop
per example) and the cache for a whole split is a handful of objects.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from pie_mlops.config.schema import Train
from pie_mlops.util.errors import PieError

CONFIG_NAME = "pie_model.json"
MAX_LENGTH = Train.model_fields["max_length"].default  # tokens kept when a caller gives none: train's default
WEIGHTS_NAME = "model.safetensors"
TASKS = ("single_label", "multi_label")
# the integer dtype of each element size: stored forms compare and pack tensors by their bits
BIT_VIEWS = {1: torch.uint8, 2: torch.int16, 4: torch.int32, 8: torch.int64}


@dataclass(frozen=True)
class Encoded:
    ids: np.ndarray  # int64, every example's token ids back to back
    offsets: np.ndarray  # int64, n + 1 entries; example i is ids[offsets[i]:offsets[i+1]]
    type_ids: np.ndarray | None = None  # segment ids in the same layout (BERT sentence pairs)

    @classmethod
    def from_lists(cls, ids: list, type_ids: list | None = None) -> "Encoded":
        lengths = np.fromiter((len(x) for x in ids), dtype=np.int64, count=len(ids))
        offsets = np.zeros(len(ids) + 1, dtype=np.int64)
        np.cumsum(lengths, out=offsets[1:])
        flat = lambda seqs: np.fromiter((t for s in seqs for t in s), dtype=np.int64, count=int(offsets[-1]))
        return cls(flat(ids), offsets, None if type_ids is None else flat(type_ids))

    def __len__(self) -> int:
        return len(self.offsets) - 1

    @property
    def lengths(self) -> np.ndarray:
        return np.diff(self.offsets)

    def padded(self, rows: np.ndarray, pad_id: int) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """(ids, mask, type_ids) for `rows`, padded to the longest of them, vectorised."""
        lens = self.lengths[rows]
        pos = np.arange(int(lens.max()))
        mask = pos[None, :] < lens[:, None]
        idx = np.where(mask, self.offsets[rows][:, None] + pos[None, :], 0)
        ids = np.where(mask, self.ids[idx], pad_id)
        types = None if self.type_ids is None else np.where(mask, self.type_ids[idx], 0)
        return ids, mask, types


def check_task(task: str, num_labels: int) -> None:
    if task not in TASKS:
        raise PieError(f"task must be one of {TASKS}, got {task!r}")
    if num_labels < 2 and task == "single_label" or num_labels < 1:
        raise PieError(f"num_labels must be at least 2 for single-label (1 for multi-label), got {num_labels}")


def check_stackable(models, seeds, arch: str, signature) -> None:
    """A seed-parallel group: one seed per model, all `arch`, all with the same signature(model)
    (architecture, task, ...), or a PieError naming what differs."""
    if not models:
        raise PieError("seed-parallel training needs at least one model")
    if len(seeds) != len(models):
        raise PieError(f"{len(models)} models but {len(seeds)} seeds")
    for m in models:
        if getattr(m, "arch", None) != arch:
            raise PieError(f"a stacked {arch} group takes {arch} models only, got {getattr(m, 'arch', m)!r}")
        if signature(m) != signature(models[0]):
            raise PieError("seed-parallel models must share their architecture, task and length limit")


def write_config(path: Path, config: dict) -> None:
    path.mkdir(parents=True, exist_ok=True)
    (path / CONFIG_NAME).write_text(json.dumps(config, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def read_config(path: str | Path) -> dict:
    path = Path(path)
    if not path.exists():
        raise PieError(f"{path}: model path does not exist")
    file = path / CONFIG_NAME
    if not file.is_file():
        raise PieError(f"{path}: not a saved pie-mlops model ({CONFIG_NAME} missing)")
    try:
        return json.loads(file.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise PieError(f"{file}: not valid JSON ({exc})") from None


def as_tensor(array: np.ndarray | torch.Tensor, device: torch.device) -> torch.Tensor:
    if isinstance(array, torch.Tensor):  # a batch DeviceEncoded built on the device already
        return array.to(device)
    return torch.from_numpy(np.ascontiguousarray(array)).to(device)


class DeviceEncoded:
    """An Encoded split uploaded once to `device` (ids, offsets, type ids), so each batch is
    padded there and only its row indices travel (the training loop's `data_on_device`, for an
    accelerator; on the CPU it changes nothing but the copies). `padded` gives the same integers
    as Encoded.padded, as tensors; `lengths` stays on the host (batching, packed sequences)."""

    def __init__(self, enc: Encoded, device: torch.device):
        self.host, self.device = enc, torch.device(device)
        self.ids = torch.from_numpy(enc.ids).to(self.device)
        self.offsets = torch.from_numpy(enc.offsets).to(self.device)
        self.type_ids = None if enc.type_ids is None else torch.from_numpy(enc.type_ids).to(self.device)

    def __len__(self) -> int:
        return len(self.host)

    @property
    def lengths(self) -> np.ndarray:
        return self.host.lengths

    def padded(self, rows: np.ndarray, pad_id: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        width = int(self.host.lengths[rows].max())  # from the host: no device sync
        r = torch.from_numpy(np.ascontiguousarray(rows, dtype=np.int64)).to(self.device, non_blocking=True)
        starts = self.offsets[r]
        lens = self.offsets[r + 1] - starts
        pos = torch.arange(width, device=self.device)
        mask = pos[None, :] < lens[:, None]
        idx = torch.where(mask, starts[:, None] + pos[None, :], 0)
        ids = torch.where(mask, self.ids[idx], pad_id)
        types = None if self.type_ids is None else torch.where(mask, self.type_ids[idx], 0)
        return ids, mask, types


def stack_padded(enc, rows_per_seed: list, pad_id: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """(ids, mask, type_ids), each [S, B, T], for S row sets (a seed stack's step): each set padded
    by `enc.padded` (an Encoded's on the host, a DeviceEncoded's on its device, where the result
    stays), then placed in one shape, B the most rows and T the longest row of all; the places
    beyond a set's own rows and tokens hold `pad_id` (mask False, type 0)."""
    where = enc.device if isinstance(enc, DeviceEncoded) else torch.device("cpu")
    s, b = len(rows_per_seed), max(len(r) for r in rows_per_seed)
    t = int(max(int(enc.lengths[r].max()) for r in rows_per_seed))
    ids = torch.full((s, b, t), pad_id, dtype=torch.int64, device=where)
    mask = torch.zeros((s, b, t), dtype=torch.bool, device=where)
    types = None if enc.type_ids is None else torch.zeros((s, b, t), dtype=torch.int64, device=where)
    for i, rows in enumerate(rows_per_seed):
        got, m, ty = enc.padded(rows, pad_id)
        n, w = got.shape
        ids[i, :n, :w], mask[i, :n, :w] = as_tensor(got, where), as_tensor(m, where)
        if types is not None:
            types[i, :n, :w] = as_tensor(ty, where)
    return ids, mask, types
