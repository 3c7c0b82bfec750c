"""`num_threads` of tune/train/prune (pie_mlops/seeding.py: intra_op_threads): the models a stage
computes in its own process get that many intra-op threads, and the process gets its own back
after, also when the block fails; null leaves torch's default alone (the default and tiny
profiles compute exactly what they did)."""

from __future__ import annotations

import pytest
import torch

from pie_mlops.util.errors import PieError
from pie_mlops.util.seeding import intra_op_threads


@pytest.fixture
def two_threads():
    before = torch.get_num_threads()
    torch.set_num_threads(2)  # a process with more than one, whatever this machine's default
    yield 2
    torch.set_num_threads(before)


def test_set_inside_restored_after_even_on_an_error(two_threads):
    with intra_op_threads(1):
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == two_threads
    with pytest.raises(PieError), intra_op_threads(1):
        raise PieError("a job failed")
    assert torch.get_num_threads() == two_threads
    with intra_op_threads(None):
        assert torch.get_num_threads() == two_threads


def test_tune_and_prune_compute_each_architecture_at_its_own_num_threads(two_threads, monkeypatch):
    from pie_mlops.stages import prune as prune_stage
    from pie_mlops.stages import tune as tune_stage

    seen = []
    from plans import plan

    monkeypatch.setattr(tune_stage, "tune_one", lambda p, progress: seen.append((p["arch"], torch.get_num_threads())))
    monkeypatch.setattr(prune_stage, "_prune_arch", lambda p, progress, ctx: seen.append((p.arch, torch.get_num_threads())) or [])
    threads = {"bert": None, "bilstm": 1}
    tune_stage.tune([plan("tune", arch, num_threads=threads) for arch in ("bert", "bilstm")])
    prune_stage.prune([plan("prune", arch, num_threads=threads) for arch in ("bert", "bilstm")])
    assert seen == [("bert", two_threads), ("bilstm", 1)] * 2
    assert torch.get_num_threads() == two_threads
