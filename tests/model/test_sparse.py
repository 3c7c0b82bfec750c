"""Sparse storage of pruned weights (models/sparse.py): packed on save, restored bit-identically."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from pie_mlops.models import load_model
from pie_mlops.models.common import WEIGHTS_NAME
from pie_mlops.models.sparse import load_weights, pack, packed_names, save_weights, unpack


def _prune_half(model) -> None:
    """Zero the smaller half of every 2-d non-embedding weight, as unstructured pruning does."""
    embeddings = {id(m.weight) for m in model.modules() if isinstance(m, torch.nn.Embedding)}
    with torch.no_grad():
        for p in model.parameters():
            if p.ndim == 2 and id(p) not in embeddings:
                p[p.abs() <= p.abs().median()] = 0.0


def _bits(t: torch.Tensor) -> torch.Tensor:
    return t.contiguous().view({2: torch.int16, 4: torch.int32, 8: torch.int64}[t.element_size()])


def test_pack_unpack_is_bit_identical_incl_negative_zero_nan_and_other_dtypes(tmp_path):
    g = torch.Generator().manual_seed(0)
    w = torch.randn(40, 30, generator=g)  # pruning zeroes matrices: only those are packed
    w[w.abs() < 0.8] = 0.0
    w[0, :3] = torch.tensor([-0.0, float("nan"), float("inf")])
    state = {"w": w, "h": w.to(torch.float16), "b": w.to(torch.bfloat16), "d": torch.randn(10, 10, generator=g),
             "i": torch.arange(200).reshape(20, 10), "small": torch.zeros(4, 2), "bias": torch.zeros(100)}
    tensors, packed = pack(state)
    assert set(packed) == {"w", "h", "b"}  # dense, integer and tiny tensors stay as they are
    assert all(k in tensors for k in ("d", "i", "small", "bias"))
    back = unpack(tensors, packed)
    for name, t in state.items():
        assert back[name].dtype == t.dtype and back[name].shape == t.shape
        if t.is_floating_point():
            assert torch.equal(_bits(back[name]), _bits(t)), name  # -0.0 and NaN bits too
        else:
            assert torch.equal(back[name], t)
    assert save_weights(state, tmp_path / "x.safetensors")
    assert packed_names(tmp_path / "x.safetensors") == {k: list(state[k].shape) for k in ("w", "h", "b")}
    again = load_weights(tmp_path / "x.safetensors")
    assert all(torch.equal(_bits(again[k]), _bits(state[k])) for k in ("w", "h", "b", "d"))


def test_a_corrupt_mask_is_a_one_line_error():
    from pie_mlops.util.errors import PieError

    w = torch.zeros(10, 10)
    w[0] = 1.0
    tensors, packed = pack({"w": w})
    tensors["w::values"] = tensors["w::values"][:5]
    with pytest.raises(PieError, match="sparse tensor w: mask has 10 set bits for 5 values"):
        unpack(tensors, packed)


@pytest.mark.parametrize("arch", ["bert", "bilstm"])
def test_pruned_model_saves_smaller_and_loads_back_bit_identically(arch, tiny_bert, tiny_bilstm, nli, tmp_path):
    model = tiny_bert(3) if arch == "bert" else tiny_bilstm(nli, 3)
    model.save(tmp_path / "dense")
    _prune_half(model)
    model.save(tmp_path / "sparse")
    dense_bytes = (tmp_path / "dense" / WEIGHTS_NAME).stat().st_size
    sparse_bytes = (tmp_path / "sparse" / WEIGHTS_NAME).stat().st_size
    assert not packed_names(tmp_path / "dense" / WEIGHTS_NAME)  # nothing to gain: an ordinary file
    assert packed_names(tmp_path / "sparse" / WEIGHTS_NAME)
    assert sparse_bytes < dense_bytes
    loaded = load_model(tmp_path / "sparse")
    want, got = model.state_dict(), loaded.state_dict()
    assert set(want) == set(got)
    for name in want:
        if want[name].is_floating_point():
            assert torch.equal(_bits(got[name]), _bits(want[name])), name
    if arch == "bert":  # a packed model is no starting checkpoint (from_pretrained cannot read it)
        from pie_mlops.util.errors import PieError
        from pie_mlops.models.bert import BertClassifier

        with pytest.raises(PieError, match="sparse"):
            BertClassifier.from_pretrained(str(tmp_path / "sparse"), 3)


def test_a_delta_against_its_base_rebuilds_bit_identically_and_refuses_another_base():
    from pie_mlops.util.errors import PieError
    from pie_mlops.models import delta

    g = torch.Generator().manual_seed(1)
    base = {"w": torch.randn(40, 30, generator=g), "emb": torch.randn(50, 8, generator=g),
            "b": torch.randn(30, generator=g), "v": torch.randn(30, 30, generator=g)}
    base["w"][0, :2] = torch.tensor([-0.0, float("nan")])
    w = base["w"].clone()
    w[w.abs() < 0.5] = 0.0                        # os pruning: the base under a mask
    w[0, :2] = base["w"][0, :2]                   # -0.0 and NaN kept as values
    state = {"w": w, "emb": base["emb"].clone(), "b": base["b"].clone(),
             "v": base["v"] + 1.0,                # retrained (a recovery step): stored whole
             "new": torch.randn(3, 3, generator=g)}  # not in the base: stored whole
    keep, from_base, masked = delta.split(state, base)
    assert from_base == ["b", "emb"] and masked == {"w": [40, 30]}
    assert set(keep) == {"w::basemask", "v", "new"} and keep["w::basemask"].dtype == torch.uint8
    meta = delta.metadata({"model_id": "m-x", "path": "p"}, from_base, masked, state)
    back = delta.rebuild(Path("f"), keep, meta, base)
    assert set(back) == set(state)
    assert all(torch.equal(_bits(back[k]), _bits(state[k])) for k in state)
    other = {**base, "emb": base["emb"] + 1e-7}   # a base that changed since
    with pytest.raises(PieError, match="does not match its SHA-256"):
        delta.rebuild(Path("f"), keep, meta, other)
    with pytest.raises(PieError, match="lacks tensor 'w'"):
        delta.rebuild(Path("f"), keep, meta, {k: v for k, v in base.items() if k != "w"})


def test_a_delta_whose_base_cannot_be_fetched_is_a_one_line_error(tmp_path, monkeypatch):
    from pie_mlops.util.errors import PieError
    from pie_mlops.models.sparse import write_delta

    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")  # a real, empty store
    base = {"w": torch.randn(20, 20), "b": torch.randn(20)}
    w = base["w"].clone()
    w[w.abs() < 0.5] = 0.0
    save_weights({"w": w, "b": base["b"].clone()}, tmp_path / "x.safetensors")
    assert write_delta(tmp_path / "x.safetensors", base, {"model_id": "m-gone", "path": "saved/model.safetensors"})
    assert (tmp_path / "x.safetensors").stat().st_size < 20 * 20 * 4 / 4  # a bit per weight, no values
    with pytest.raises(PieError, match="m-gone.*could not be fetched from the tracking store.*set MLFLOW_TRACKING_URI") as err:
        load_weights(tmp_path / "x.safetensors")
    assert "\n" not in str(err.value)
