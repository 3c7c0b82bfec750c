"""The data-on-device path of the training loop and of prediction gives exactly the host
path's results on the CPU (the GPU's path, exercised here), for BERT and the BiLSTM."""

from __future__ import annotations

import numpy as np
import pytest

from pie_mlops.jobs.training import TrainConfig, predict_logits, train


@pytest.mark.parametrize("arch", ["bert", "bilstm"])
def test_data_on_device_trains_and_predicts_bit_identically(arch, tiny_bert, tiny_bilstm, sentiment):
    def run(on_device):
        model = tiny_bert(2, seed=3) if arch == "bert" else tiny_bilstm(sentiment, 2, seed=3)
        result = train(model, sentiment["train"], sentiment["validation"],
                       TrainConfig(epochs=2, seed=3, progress=False, batch_size=16, data_on_device=on_device))
        return result, predict_logits(model, sentiment["test"], data_on_device=on_device)

    (host, host_logits), (dev, dev_logits) = run("auto"), run(True)
    np.testing.assert_array_equal(host_logits, dev_logits)
    np.testing.assert_array_equal(host.val_logits, dev.val_logits)
    assert [h["train_loss"] for h in host.history] == [h["train_loss"] for h in dev.history]


@pytest.mark.parametrize("arch,task", [("bilstm", "single_label"), ("bilstm", "multi_label"), ("bert", "single_label")])
def test_seed_stack_on_the_device_trains_and_predicts_bit_identically(arch, task, tiny_bert, tiny_bilstm, sentiment,
                                                                      topics, monkeypatch):
    """The seed stack (jobs/seed_training.py) with its split and targets on the device, padded
    there (forced on the CPU): the same weights, losses and logits as padding on the host."""
    import torch

    from pie_mlops.jobs.seed_training import predict_logits_stacked, train_seeds
    from pie_mlops.models.common import DeviceEncoded

    padded, calls = DeviceEncoded.padded, []
    monkeypatch.setattr(DeviceEncoded, "padded", lambda self, *a: calls.append(1) or padded(self, *a))

    data = sentiment if task == "single_label" else topics
    labels = 2 if task == "single_label" else len(data["train"]["labels"].iloc[0])
    seeds = [0, 1, 2]

    def run(on_device):
        models = [tiny_bert(labels, task, seed=s) if arch == "bert" else tiny_bilstm(data, labels, task, seed=s)
                  for s in seeds]
        torch.manual_seed(0)  # vmap's dropout draws from the global stream (the BiLSTM: one per seed)
        results, stack = train_seeds(models, seeds, data["train"], data["validation"],
                                     TrainConfig(epochs=2, batch_size=16, progress=False, snapshot_epochs=(1,),
                                                 data_on_device=on_device))
        logits = predict_logits_stacked(stack, data["test"], models[0], data_on_device=on_device)
        return models, results, logits

    (host_models, host, host_logits) = run("auto")
    assert not calls  # the host path on a CPU under auto
    (dev_models, dev, dev_logits) = run(True)
    assert calls  # the device path: padded by DeviceEncoded
    for a, b in zip(host_models, dev_models):
        for (name, p), q in zip(a.named_parameters(), b.parameters()):
            assert torch.equal(p, q), name
    np.testing.assert_array_equal(host_logits, dev_logits)
    for a, b in zip(host, dev):
        np.testing.assert_array_equal(a.val_logits, b.val_logits)
        np.testing.assert_array_equal(a.snapshots["train@epoch1"], b.snapshots["train@epoch1"])
        assert [h["train_loss"] for h in a.history] == [h["train_loss"] for h in b.history]
    assert not np.array_equal(host_logits[0], host_logits[1])  # three models, not one
