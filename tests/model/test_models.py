"""Models build, encode, save with safetensors only, load back and predict the same."""

from __future__ import annotations

import copy
import io
import pickle

import numpy as np
import pytest
import torch

from pie_mlops.util.errors import PieError
from pie_mlops.models import build_model, load_model
from pie_mlops.models.bilstm import SEP, UNK, tokenize
from pie_mlops.jobs.training import predict_logits


def test_missing_model_path_is_a_clear_error(tmp_path):
    with pytest.raises(PieError, match="does not exist"):
        build_model("bert", 2, model_path=str(tmp_path / "nope"))
    with pytest.raises(PieError, match="does not exist"):
        load_model(tmp_path / "nope")
    with pytest.raises(PieError, match="unknown architecture"):
        build_model("gpt9", 2)


def test_bert_pairs_get_segment_ids(tiny_bert):
    model = tiny_bert(3)
    enc = model.encode(["a man reads"], ["someone reads"])
    assert enc.type_ids is not None and set(enc.type_ids.tolist()) == {0, 1}


def test_bilstm_tokenizer_and_pair_separator(tiny_bilstm, nli):
    assert tokenize("It's GREAT, isn't it?") == ["it's", "great", ",", "isn't", "it", "?"]
    model = tiny_bilstm(nli, 3)
    enc = model.encode(["a man", "zzzunknown"], ["a woman", None])
    first = enc.ids[enc.offsets[0]:enc.offsets[1]].tolist()
    assert SEP in first and enc.ids[enc.offsets[1]] == UNK


@pytest.mark.parametrize("arch", ["bert", "bilstm"])
def test_save_load_round_trip_predicts_identically(arch, tiny_bert, tiny_bilstm, nli, tmp_path):
    model = tiny_bert(3) if arch == "bert" else tiny_bilstm(nli, 3)
    before = predict_logits(model, nli["test"])
    model.save(tmp_path / "m")
    files = {p.name for p in (tmp_path / "m").iterdir()}
    assert "model.safetensors" in files and "pie_model.json" in files
    assert not any(f.endswith((".bin", ".pt", ".pkl", ".pth")) for f in files)  # never pickles
    loaded = load_model(tmp_path / "m")
    assert type(loaded) is type(model) and loaded.task == model.task
    np.testing.assert_array_equal(predict_logits(loaded, nli["test"]), before)


def test_real_glove_bilstm_has_the_paper_shape_and_round_trips(nli, tmp_path):
    model = build_model("bilstm", 3, seed=0)
    assert model.embedding.weight.shape == (400_003, 50) and not model.embedding.weight.requires_grad
    assert model.lstm.hidden_size == 100 and model.lstm.num_layers == 2 and model.lstm.bidirectional
    assert [m.out_features for m in model.head if hasattr(m, "out_features")] == [256, 128, 3]
    enc = model.encode(["the film was great"])
    assert UNK not in enc.ids.tolist()  # common words are in GloVe
    small = nli["test"].head(20)
    before = predict_logits(model, small)
    model.save(tmp_path / "g")
    assert (tmp_path / "g" / "model.safetensors").stat().st_size < 2_000_000  # frozen GloVe not copied
    np.testing.assert_array_equal(predict_logits(load_model(tmp_path / "g"), small), before)


def test_default_bert_is_the_packaged_minilm_with_sdpa_and_multi_label_head():
    model = build_model("bert", 4, "multi_label", seed=0)
    config = model.model.config
    assert config.num_hidden_layers == 6 and config.hidden_size == 384 and config.num_labels == 4
    assert config.problem_type == "multi_label_classification"
    assert config._attn_implementation == "sdpa"


def test_hub_name_offline_is_a_one_line_error():
    # The tests run with HF_HUB_OFFLINE=1: a hub name cannot load, and must say so in one line.
    import pytest

    from pie_mlops.util.errors import PieError
    from pie_mlops.models import build_model

    with pytest.raises(PieError) as exc:
        build_model("bert", 2, model_path="someorg/not-a-model")
    assert "someorg/not-a-model" in str(exc.value) and "\n" not in str(exc.value)


# -- pickling (copy.deepcopy, torch.save) and the pyfunc form ---------------------------------
def _same_state(a, b) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return list(sa) == list(sb) and all(sa[k].dtype == sb[k].dtype and torch.equal(sa[k], sb[k]) for k in sa)


@pytest.fixture(scope="module")
def small_glove_bilstm():
    from pie_mlops.models.bilstm import BiLSTMClassifier
    from pie_mlops.jobs.training import seed_everything

    seed_everything(0)
    return BiLSTMClassifier.with_glove(3, hidden=8, mlp=(16, 8)).eval()


def test_glove_bilstm_pickles_without_the_glove_matrix(small_glove_bilstm, nli):
    model, small = small_glove_bilstm, nli["test"].head(20)
    weight = model.embedding.weight
    assert weight.numel() * weight.element_size() > 75_000_000  # the frozen GloVe alone
    data = pickle.dumps(model)
    assert len(data) < 5_000_000
    assert model.embedding.weight is weight and len(model.vocab) == len(model.words)  # live model untouched
    before = predict_logits(model, small)
    for other in (pickle.loads(data), copy.deepcopy(model)):
        assert _same_state(model, other) and other.words == model.words and other.vocab == model.vocab
        assert not other.embedding.weight.requires_grad and other.embedding.padding_idx == model.embedding.padding_idx
        assert other.embedding.weight.data_ptr() != weight.data_ptr() and other.vocab is not model.vocab
        assert not other.training
        np.testing.assert_array_equal(predict_logits(other, small), before)


def test_glove_bilstm_rebuilt_embedding_follows_the_lstm_device_and_dtype(small_glove_bilstm):
    buf = io.BytesIO()
    torch.save(copy.deepcopy(small_glove_bilstm).double(), buf)
    assert buf.tell() < 5_000_000
    buf.seek(0)
    loaded = torch.load(buf, weights_only=False)
    assert loaded.embedding.weight.dtype == torch.float64
    assert torch.equal(loaded.embedding.weight, small_glove_bilstm.embedding.weight.double())
    buf.seek(0)
    on_meta = torch.load(buf, weights_only=False, map_location="meta")  # as map_location to any device
    assert {p.device.type for p in on_meta.parameters()} == {"meta"}


def test_edited_glove_embedding_is_pickled_in_full(small_glove_bilstm):
    model = copy.deepcopy(small_glove_bilstm)
    with torch.no_grad():
        model.embedding.weight[5] += 1.0
    data = pickle.dumps(model)
    assert len(data) > 75_000_000
    assert _same_state(model, pickle.loads(data))


def test_glove_bilstm_pyfunc_round_trip_without_pickle(small_glove_bilstm, nli, tmp_path, monkeypatch):
    """The registry's model form (tracking/serving.py), pruned so its weights are packed: MLflow
    loads it from code with pickle deserialization off and answers as our classifier does."""
    import mlflow.pyfunc

    from pie_mlops.tracking.serving import input_example, save_pyfunc

    monkeypatch.delenv("MLFLOW_ALLOW_PICKLE_DESERIALIZATION", raising=False)
    model, small = copy.deepcopy(small_glove_bilstm), nli["test"].head(20)
    with torch.no_grad():
        for p in model.lstm.parameters():
            if p.ndim == 2:
                p[p.abs() <= p.abs().median()] = 0.0
    saved = model.save(tmp_path / "saved")
    path = save_pyfunc(model, saved, ["entailment", "neutral", "contradiction"], None, input_example(small),
                       tmp_path / "pyfunc", requirements=["pie-mlops"])
    assert sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) < 2_000_000  # GloVe not copied
    loaded = mlflow.pyfunc.load_model(str(path))
    answer = loaded.predict(small[["text", "text_pair"]])
    logits = predict_logits(model, small)
    assert answer["label"].tolist() == logits.argmax(axis=1).tolist()
    assert answer["label_name"].iloc[0] in ("entailment", "neutral", "contradiction")


def test_inline_bilstm_pickles_its_embedding(tiny_bilstm, nli):
    model = tiny_bilstm(nli, 3).eval()
    small = nli["test"].head(20)
    data = pickle.dumps(model)
    assert len(data) > model.embedding.weight.numel() * 4  # the vectors travel with the model
    before = predict_logits(model, small)
    for other in (pickle.loads(data), copy.deepcopy(model)):
        assert _same_state(model, other) and other.words == model.words and other.vocab == model.vocab
        np.testing.assert_array_equal(predict_logits(other, small), before)
