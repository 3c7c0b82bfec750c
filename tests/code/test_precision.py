"""GPU preparation, checked on the CPU: bf16 autocast is chosen only for CUDA (and BERT/MiniLM
under `auto`), the plan records it only where it takes effect, and a split kept on the device
pads batches to the same integers as the host path (models/predict.py, models/common.py)."""

from __future__ import annotations

from contextlib import nullcontext
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from pie_mlops.models.common import DeviceEncoded, Encoded, stack_padded
from pie_mlops.models.predict import effective_autocast, on_device, precision

pytestmark = pytest.mark.unit

BERT, BILSTM = SimpleNamespace(arch="bert"), SimpleNamespace(arch="bilstm")


@pytest.mark.parametrize("mode", ["auto", "bf16", "off", None])
def test_no_autocast_on_a_cpu(mode):
    for model in (BERT, BILSTM):
        assert isinstance(precision(model, torch.device("cpu"), mode), nullcontext)
        assert effective_autocast(mode, model.arch, "cpu") == "off"


@pytest.mark.filterwarnings("ignore:CUDA is not available")  # the context is only built, never entered
def test_autocast_on_cuda_only_for_bert_under_auto():
    cuda = torch.device("cuda")
    ctx = precision(BERT, cuda, "auto")
    assert isinstance(ctx, torch.autocast) and ctx.fast_dtype == torch.bfloat16 and ctx.device == "cuda"
    assert isinstance(precision(BILSTM, cuda, "auto"), nullcontext)
    assert isinstance(precision(BILSTM, cuda, "bf16"), torch.autocast)
    assert isinstance(precision(BERT, cuda, "off"), nullcontext)
    assert effective_autocast("auto", "bert", "cuda") == "bf16"
    assert effective_autocast("auto", "bilstm", "cuda") == "off"
    assert effective_autocast("bf16", "bilstm", "cuda") == "bf16"
    assert effective_autocast("off", "bert", "cuda") == "off"


def test_cpu_plans_and_configs_are_unchanged():
    """The schema's default (`auto`) adds nothing to a CPU plan, so no params hash changes."""
    from pie_mlops.config.schema import defaults
    from pie_mlops.jobs.training import TrainConfig

    assert defaults("train")["autocast"] == "auto" and defaults("prune")["autocast"] == "auto"
    assert TrainConfig().autocast == "off" and TrainConfig().data_on_device == "auto"
    if not torch.cuda.is_available():
        from pie_mlops.config.plans import resolve
        from pie_mlops.stages.train import job_plan

        assert "autocast" not in job_plan(resolve("train", arch="bert"))


def test_device_encoded_pads_as_the_host_does():
    rng = np.random.default_rng(0)
    seqs = [list(rng.integers(1, 100, rng.integers(1, 12))) for _ in range(50)]
    for types in (None, [[i % 2 for i in range(len(s))] for s in seqs]):
        enc = Encoded.from_lists(seqs, types)
        dev = DeviceEncoded(enc, torch.device("cpu"))
        assert len(dev) == len(enc) and np.array_equal(dev.lengths, enc.lengths)
        for rows in (np.arange(7), rng.permutation(50)[:16], np.array([3])):
            ids, mask, ty = enc.padded(rows, 0)
            d_ids, d_mask, d_ty = dev.padded(rows, 0)
            assert np.array_equal(d_ids.numpy(), ids) and np.array_equal(d_mask.numpy(), mask)
            assert (ty is None and d_ty is None) or np.array_equal(d_ty.numpy(), ty)
        sets = [rng.permutation(50)[:16], np.arange(5), np.array([7])]  # a seed stack's step: S row sets
        for got, want in zip(stack_padded(dev, sets, 9), stack_padded(enc, sets, 9)):
            assert (got is None and want is None) or torch.equal(got, want)
        ids, mask, _ = stack_padded(enc, sets, 9)
        assert ids.shape == (3, 16, int(max(enc.lengths[r].max() for r in sets)))
        assert not mask[1, 5:].any() and (ids[1, 5:] == 9).all()  # beyond a set's rows: padding


def test_on_device_only_when_asked_or_on_an_accelerator():
    enc = Encoded.from_lists([[1, 2], [3]])
    assert on_device(enc, torch.device("cpu"), "auto") is enc
    assert on_device(enc, torch.device("cpu"), False) is enc
    assert isinstance(on_device(enc, torch.device("cpu"), True), DeviceEncoded)


@pytest.mark.filterwarnings("ignore:CUDA is not available")
def test_tune_trials_train_under_trains_autocast():
    """`tune`'s trials take the autocast the train stage's job plan records (on a CPU: none, the
    study and its trials as before; on CUDA, simulated through the pure choice: bf16 for MiniLM)."""
    from pie_mlops.config.plans import for_arch, resolve
    from pie_mlops.models.predict import job_autocast
    from pie_mlops.stages.train import job_plan
    from pie_mlops.stages.tune import study_identity, trial_config

    for arch in ("bert", "bilstm"):
        tune = for_arch(resolve("tune"), arch).model_dump()
        assert tune["autocast"] == "auto"
        if not torch.cuda.is_available():
            train_plan = job_plan(for_arch(resolve("train"), arch, tuned=False))
            assert trial_config(tune, {}).autocast == job_autocast(train_plan) == "off"
            assert "autocast" not in study_identity(tune, "md5")  # CPU study names as before
        want = effective_autocast(resolve("train", arch=arch).autocast, arch, "cuda")
        assert trial_config(tune, {}, device="cuda").autocast == want == ("bf16" if arch == "bert" else "off")
        assert ("autocast" in study_identity(tune, "md5", device="cuda")) is (arch == "bert")
        assert trial_config(dict(tune, autocast="off"), {}, device="cuda").autocast == "off"
        assert trial_config(dict(tune, autocast="bf16"), {}, device="cuda").autocast == "bf16"
