"""Tiny models and small in-memory datasets, so the model suite stays fast on 2 CPU cores.

tests/model/__init__.py makes this module `model.conftest`: without it, it would be
imported as plain `conftest` and shadow tests/conftest.py, which tests/code imports by name.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from pie_mlops.data.contract import to_multi_hot
from pie_mlops.data.synthetic import synthetic_nli, synthetic_topics
from pie_mlops.models.bilstm import tokenize

# Tiny models gain nothing from a second thread, and on a shared 2-core machine two
# OpenMP threads spin-waiting for a busy core made single tests 20x slower.
torch.set_num_threads(1)


def _split(df: pd.DataFrame, prefix: str) -> dict[str, pd.DataFrame]:
    df = df.sample(frac=1.0, random_state=0).reset_index(drop=True)
    df.insert(0, "example_id", [f"{prefix}-{i:04d}" for i in range(len(df))])
    if "text_pair" not in df:
        df["text_pair"] = None
    n = len(df)
    return {"train": df.iloc[: int(0.7 * n)].reset_index(drop=True),
            "validation": df.iloc[int(0.7 * n): int(0.85 * n)].reset_index(drop=True),
            "test": df.iloc[int(0.85 * n):].reset_index(drop=True)}


@pytest.fixture(scope="session")
def nli() -> dict[str, pd.DataFrame]:
    df, _ = synthetic_nli(n=600)
    return _split(df, "nli")


@pytest.fixture(scope="session")
def topics() -> dict[str, pd.DataFrame]:
    df, names = synthetic_topics(n=600)
    df["labels"] = [np.asarray(to_multi_hot(v, len(names)), dtype=np.int8) for v in df["labels"]]
    return _split(df, "topics")


@pytest.fixture(scope="session")
def sentiment() -> dict[str, pd.DataFrame]:
    """Single-label, single text: positive and negative words, an easy signal."""
    rng = np.random.default_rng(1)
    pos, neg = ["great", "fine", "superb", "lovely", "moving"], ["dull", "awful", "boring", "weak", "bad"]
    filler = ["the", "film", "was", "a", "story", "really", "and", "plot", "acting", "quite"]
    rows = []
    for i in range(400):
        label = i % 2
        words = list(rng.choice(filler, rng.integers(3, 14))) + list(rng.choice(pos if label else neg, 2))
        rng.shuffle(words)
        rows.append((" ".join(words), label))
    return _split(pd.DataFrame(rows, columns=["text", "label"]), "sent")


@pytest.fixture(scope="session")
def tokenizer():
    from transformers import AutoTokenizer

    from pie_mlops.models.bert import default_model_path

    return AutoTokenizer.from_pretrained(default_model_path())


@pytest.fixture
def tiny_bert(tokenizer):
    """A factory: a 2-layer, hidden-32 BERT from a config, with the MiniLM WordPiece vocab."""
    from transformers import BertConfig

    from pie_mlops.models.bert import BertClassifier
    from pie_mlops.jobs.training import seed_everything

    def make(num_labels: int, task: str = "single_label", seed: int = 0) -> BertClassifier:
        seed_everything(seed)
        config = BertConfig(vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                            intermediate_size=64, max_position_embeddings=128, num_labels=num_labels)
        return BertClassifier.from_config(config, tokenizer, task, max_length=64)

    return make


@pytest.fixture
def tiny_bilstm():
    """A factory: a small BiLSTM over random 16-d vectors for the test data's words."""
    from pie_mlops.models.bilstm import BiLSTMClassifier
    from pie_mlops.jobs.training import seed_everything

    def make(frames: dict[str, pd.DataFrame], num_labels: int, task: str = "single_label", seed: int = 0):
        texts = pd.concat([frames["train"]["text"], frames["train"]["text_pair"].dropna()])
        words = sorted({w for t in texts for w in tokenize(t)})
        vectors = np.random.default_rng(123).normal(0, 1, (len(words), 16)).astype(np.float32)
        seed_everything(seed)
        return BiLSTMClassifier(words, vectors, num_labels, task, hidden=16, mlp=(32, 16))

    return make
