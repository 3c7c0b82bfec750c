"""MB per registered version of all-MiniLM-L6-v2 pruned to 50%, in each stored form, side by
side in one run: the dense save, the packed pruned save (models/sparse.py) and the `os` delta
against the dense version (models/delta.py). The delta's round trip is checked too.

    .venv/bin/python bench/version_size.py        # a table, then one JSON object
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pie_mlops.models import build_model  # noqa: E402
from pie_mlops.models.common import WEIGHTS_NAME  # noqa: E402
from pie_mlops.models.delta import digest, rebuild, split, metadata  # noqa: E402
from pie_mlops.models.sparse import load_weights, write_delta  # noqa: E402
from pie_mlops.pruning.criteria import prunable_weights  # noqa: E402


def _mb(d: Path) -> float:
    return sum(f.stat().st_size for f in d.rglob("*") if f.is_file()) / 2**20


def main() -> None:
    model = build_model("bert", 2, "single_label", seed=0)
    with tempfile.TemporaryDirectory() as tmp:
        t = Path(tmp)
        model.save(t / "dense")
        base = load_weights(t / "dense" / WEIGHTS_NAME)
        with torch.no_grad():  # 50% of every prunable matrix, as unstructured magnitude pruning
            for p in prunable_weights(model).values():
                p[p.abs() <= p.abs().median()] = 0.0
        model.save(t / "packed")
        model.save(t / "delta")
        state = load_weights(t / "packed" / WEIGHTS_NAME)
        assert write_delta(t / "delta" / WEIGHTS_NAME, base, {"model_id": "m-bench", "path": "saved"})
        keep, from_base, masked = split(state, base)  # what load_weights rebuilds, minus the download
        same = digest(rebuild(t, keep, metadata({}, from_base, masked, state), base)) == digest(state)
        out = {"dense_mb": round(_mb(t / "dense"), 2), "packed_mb": round(_mb(t / "packed"), 2),
               "delta_mb": round(_mb(t / "delta"), 2),
               "delta_weights_mb": round((t / "delta" / WEIGHTS_NAME).stat().st_size / 2**20, 2),
               "bit_identical": same}
    print("| form | MB per version |\n| --- | --- |")
    for key in ("dense_mb", "packed_mb", "delta_mb"):
        print(f"| {key[:-3]} | {out[key]} |")
    print(json.dumps(out))


if __name__ == "__main__":
    main()
