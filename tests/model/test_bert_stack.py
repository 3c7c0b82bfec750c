"""Seed-parallel BERT training (models/bert_stack.py: vmap over Hugging Face's forward) on the
tiny random BERT: the same models as one seed at a time, and each seed apart. The stage path,
killed mid-group and rerun, is tests/model/test_seed_parallel.py's `train-bert` case."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from pie_mlops.util.errors import PieError
from pie_mlops.models import build_model
from pie_mlops.jobs.seed_training import predict_logits_stacked, train_seeds
from pie_mlops.jobs.training import TrainConfig, predict_logits, train

SEEDS = [0, 1, 2]
MIN_AGREEMENT = 0.98


def _tiny_berts(seeds):
    """The tiny profile's random 2-layer BERT, dropout off (the stated-tolerance comparison)."""
    from transformers import AutoTokenizer

    from pie_mlops.models.bert import BertClassifier, default_model_path, tiny_random_config
    from pie_mlops.util.seeding import seed_everything

    tokenizer, models = AutoTokenizer.from_pretrained(default_model_path()), []
    for seed in seeds:
        seed_everything(seed)
        config = tiny_random_config(2)
        config.hidden_dropout_prob = config.attention_probs_dropout_prob = 0.0
        models.append(BertClassifier.from_config(config, tokenizer, max_length=64))
    return models


def test_bert_seed_parallel_predicts_what_one_at_a_time_does(sentiment):
    """vmap over HF's forward against each seed alone with the shipping forward (models/fastpath.py):
    the same warm-up schedule, data order and per-seed clipping, so the same models to float rounding."""
    train_df, val_df = sentiment["train"], sentiment["validation"]
    cfg = lambda seed: TrainConfig(epochs=2, batch_size=16, seed=seed, lr=2e-3, progress=False)
    alone = []
    for model, seed in zip(_tiny_berts(SEEDS), SEEDS):
        result = train(model, train_df, val_df, cfg(seed))
        alone.append((predict_logits(model, val_df), result))
    models = _tiny_berts(SEEDS)
    init = [m.model.classifier.weight.detach().clone() for m in models]
    results, stack = train_seeds(models, SEEDS, train_df, val_df, cfg(0))
    together = predict_logits_stacked(stack, val_df, models[0])
    for i, (logits, result) in enumerate(alone):
        assert not torch.equal(init[i], models[i].model.classifier.weight)  # trained, and written back
        assert np.abs(together[i] - logits).max() < 1e-4
        assert (together[i].argmax(1) == logits.argmax(1)).mean() >= MIN_AGREEMENT
        np.testing.assert_allclose(results[i].val_logits, logits, atol=1e-4)
        for got, want in zip(results[i].history, result.history):  # the same schedule, step for step
            assert got["lr"] == pytest.approx(want["lr"])
            assert got["train_loss"] == pytest.approx(want["train_loss"], abs=1e-4)
    assert not np.allclose(together[0], together[1])  # the seeds are different models


def test_bert_stack_keeps_each_seed_apart_with_dropout_on(sentiment):
    """Dropout on: vmap draws different masks per seed, the loss is finite, and training a stack of
    two identical models leaves them different (each seed its own dropout draws)."""
    from pie_mlops.models.bert_stack import StackedBert

    twins = _tiny_berts([7, 7])  # the same seed: the same initial weights
    assert torch.equal(twins[0].model.classifier.weight, twins[1].model.classifier.weight)
    for m in twins:
        for module in m.modules():
            if isinstance(module, torch.nn.Dropout):
                module.p = 0.5
    results, stack = train_seeds(twins, [0, 1], sentiment["train"].head(32), None,
                                 TrainConfig(epochs=1, batch_size=16, progress=False))
    assert isinstance(stack, StackedBert) and all(np.isfinite(r.history[0]["train_loss"]) for r in results)
    assert not torch.equal(twins[0].model.classifier.weight, twins[1].model.classifier.weight)
    with pytest.raises(PieError, match="takes bert models only"):
        StackedBert([twins[0], build_model("bilstm", 2, seed=0, max_length=64)], [0, 1])
