"""The training loop: determinism, learning each task, validation-only thresholds, caching."""

from __future__ import annotations

import numpy as np
import pytest

from pie_mlops.util.metrics import sigmoid, tune_threshold
from pie_mlops.jobs.training import (TrainConfig, bucketed_batches, encode_split, predict_logits, score, targets,
                                train)

FAST = dict(progress=False, batch_size=16)


def _fit(make, frames, cfg):
    model = make()
    result = train(model, frames["train"], frames["validation"], cfg)
    return model, result


@pytest.mark.parametrize("arch", ["bert", "bilstm"])
def test_same_seed_same_logits_other_seed_differs(arch, tiny_bert, tiny_bilstm, sentiment):
    def run(seed):
        model = tiny_bert(2, seed=seed) if arch == "bert" else tiny_bilstm(sentiment, 2, seed=seed)
        train(model, sentiment["train"], None, TrainConfig(epochs=1, seed=seed, **FAST))
        return predict_logits(model, sentiment["test"])

    a, b, c = run(0), run(0), run(1)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_single_label_bert_beats_chance_and_reports_each_epoch(tiny_bert, sentiment):
    model, result = _fit(lambda: tiny_bert(2), sentiment,
                         TrainConfig(epochs=4, lr=2e-3, **FAST))
    assert [h["epoch"] for h in result.history] == [1, 2, 3, 4]
    assert {"train_loss", "val_loss", "val_accuracy", "val_score"} <= set(result.history[-1])
    acc = score("single_label", targets(sentiment["test"], "single_label"), predict_logits(model, sentiment["test"]))
    assert acc > 0.7, acc


def test_the_last_validation_pass_is_the_final_models_predictions(tiny_bilstm, sentiment):
    """TrainResult.val_logits replaces a second prediction of validation: bit-identical."""
    model, result = _fit(lambda: tiny_bilstm(sentiment, 2), sentiment, TrainConfig(epochs=2, **FAST))
    np.testing.assert_array_equal(result.val_logits, predict_logits(model, sentiment["validation"]))
    _, none = _fit(lambda: tiny_bilstm(sentiment, 2), dict(sentiment, validation=None), TrainConfig(epochs=1, **FAST))
    assert none.val_logits is None


def test_sentence_pair_bilstm_beats_chance(tiny_bilstm, nli):
    model, result = _fit(lambda: tiny_bilstm(nli, 3), nli, TrainConfig(epochs=6, lr=5e-3, **FAST))
    acc = score("single_label", targets(nli["test"], "single_label"), predict_logits(model, nli["test"]))
    assert acc > 0.45, acc  # chance is 1/3


def test_sentence_pair_bert_trains(tiny_bert, nli):
    model, result = _fit(lambda: tiny_bert(3), nli, TrainConfig(epochs=8, lr=3e-3, **FAST))
    assert result.history[-1]["train_loss"] < result.history[0]["train_loss"]
    acc = score("single_label", targets(nli["test"], "single_label"), predict_logits(model, nli["test"]))
    assert acc > 0.45, acc  # chance is 1/3


@pytest.mark.parametrize("arch", ["bert", "bilstm"])
def test_multi_label_beats_chance_with_a_validation_threshold(arch, tiny_bert, tiny_bilstm, topics):
    make = (lambda: tiny_bert(4, "multi_label")) if arch == "bert" else (lambda: tiny_bilstm(topics, 4, "multi_label"))
    model, result = _fit(make, topics, TrainConfig(epochs=5, lr=3e-3 if arch == "bert" else 5e-3, **FAST))
    val_probs = sigmoid(predict_logits(model, topics["validation"]))
    assert result.threshold == tune_threshold(targets(topics["validation"], "multi_label"), val_probs)
    y_test = targets(topics["test"], "multi_label")
    f1 = score("multi_label", y_test, predict_logits(model, topics["test"]), result.threshold)
    assert f1 > 0.6, f1  # predicting everything on gives ~0.5 here; nothing gives 0


def test_threshold_never_sees_test(tiny_bilstm, topics):
    """Scrambling the test labels cannot change the threshold: train never receives test."""
    cfg = TrainConfig(epochs=1, **FAST)
    _, a = _fit(lambda: tiny_bilstm(topics, 4, "multi_label"), topics, cfg)
    scrambled = dict(topics, test=topics["test"].assign(labels=[np.zeros(4, np.int8)] * len(topics["test"])))
    _, b = _fit(lambda: tiny_bilstm(scrambled, 4, "multi_label"), scrambled, cfg)
    assert a.threshold == b.threshold


def test_hooks_and_snapshots(tiny_bilstm, sentiment):
    calls = []
    model = tiny_bilstm(sentiment, 2)
    result = train(model, sentiment["train"], sentiment["validation"],
                   TrainConfig(epochs=2, snapshot_epochs=(0, 1), **FAST), on_epoch_end=lambda e, m: calls.append((e, m)))
    assert [e for e, _ in calls] == [1, 2] and "val_accuracy" in calls[0][1]
    assert set(result.snapshots) == {"train@epoch0", "train@epoch1"}
    assert result.snapshots["train@epoch1"].shape == (len(sentiment["train"]), 2)

    class Stop(Exception):
        pass

    def prune(epoch, metrics):
        raise Stop  # what an Optuna pruning callback does

    with pytest.raises(Stop):
        train(tiny_bilstm(sentiment, 2), sentiment["train"], sentiment["validation"],
              TrainConfig(epochs=3, **FAST), on_epoch_end=prune)


def test_tokenised_once_and_reused(tiny_bert, sentiment):
    model = tiny_bert(2)
    first = encode_split(model, sentiment["train"])
    assert encode_split(model, sentiment["train"].copy()) is first  # same rows, same cache entry
    assert encode_split(model, sentiment["validation"]) is not first


def test_bucketed_batches_cover_everything_with_little_padding():
    lengths = np.random.default_rng(0).integers(1, 100, 1000)
    batches = bucketed_batches(lengths, 32, np.random.default_rng(5))
    assert sorted(np.concatenate(batches).tolist()) == list(range(1000))
    padded = sum(len(b) * lengths[b].max() for b in batches)
    assert padded < 1.1 * lengths.sum()
    again = bucketed_batches(lengths, 32, np.random.default_rng(5))
    assert all(np.array_equal(x, y) for x, y in zip(batches, again))
    other = bucketed_batches(lengths, 32, np.random.default_rng(6))
    assert not all(np.array_equal(x, y) for x, y in zip(batches, other))
