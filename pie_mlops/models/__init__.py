"""Models: `bert` (any Hugging Face encoder) and `bilstm` (the paper's GloVe BiLSTM).

Both are `nn.Module`s with the same small interface that jobs/training.py relies on:
`encode(texts, pairs) -> Encoded`, `tokenizer_key()`, `batch_inputs(enc, rows, device)`,
`forward(**inputs) -> logits`, `param_groups(wd)`, `save(dir)` / `load(dir)`, plus
`task`, `num_labels`, `default_lr` and `scheduled` (linear warm-up and decay or not).
"""

from __future__ import annotations

from pathlib import Path

from pie_mlops.util.errors import PieError

from pie_mlops.config.vocabulary import ARCHS  # noqa: F401  (one source of the names)


def build_model(arch: str, num_labels: int, task: str = "single_label", *, seed: int | None = None,
                model_path: str | None = None, **kwargs):
    """A fresh classifier. With `seed`, everything random in its initialisation is seeded."""
    if arch not in ARCHS:
        raise PieError(f"unknown architecture {arch!r}; choose one of {', '.join(ARCHS)}")
    if seed is not None:
        from pie_mlops.util.seeding import seed_everything

        seed_everything(seed)
    if arch == "bert":
        from pie_mlops.models.bert import BertClassifier

        return BertClassifier.from_pretrained(model_path, num_labels, task, **kwargs)
    from pie_mlops.models.bilstm import BiLSTMClassifier

    if model_path is not None:
        raise PieError("bilstm builds on the packaged GloVe vectors; it takes no model path")
    return BiLSTMClassifier.with_glove(num_labels, task, **kwargs)


def load_model(path: str | Path):
    """Load a model saved by `.save(path)`, whichever architecture it is; a quantized version
    (its config names a recipe, models/quantize.py) comes back quantized."""
    from pie_mlops.models.common import read_config
    from pie_mlops.models.quantize import QUANTIZE_KEY

    config = read_config(path)
    arch, method = config.get("arch"), config.get(QUANTIZE_KEY)
    if arch == "bert":
        from pie_mlops.models.bert import BertClassifier

        model = BertClassifier.load(path)
    elif arch == "bilstm":
        from pie_mlops.models.bilstm import BiLSTMClassifier

        model = BiLSTMClassifier.load(path)
    else:
        raise PieError(f"{path}: unknown architecture {arch!r} in its config")
    if method is None:
        return model
    from pie_mlops.models.quantize import check_method, quantize

    return quantize(model, check_method(str(method)))
