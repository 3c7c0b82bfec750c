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
