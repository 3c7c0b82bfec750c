"""The champion served for real: `mlflow models serve` on the registry's pyfunc (issue 18).

The module trains one dense seed per architecture on the tiny study, prunes it one-shot to
50% (so the served weights are stored packed, models/sparse.py), makes that version the
champion, then serves `models:/<name>@champion` with `--env-manager local` and checks the
answer against our own classifier's predictions.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path
from contextlib import contextmanager

import numpy as np
import pytest

from conftest import BIN
from servers import free_port, stop_group
from stage_fixtures import tiny_study

from plans import plan
from pie_mlops.stages.prune import prune as prune_stage
from pie_mlops.stages.train import train as train_stage

ARCHS = ("bert", "bilstm")
PRUNED = "magnitude-os-0_50-s0"


@pytest.fixture(scope="module")
def store(tmp_path_factory, tokenizer):
    from pie_mlops import tracking

    root = tmp_path_factory.mktemp("serving")
    common = tiny_study(root, tokenizer)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{root}/mlflow.db")
        for var in ("MLFLOW_REGISTRY_URI", "MLFLOW_RUN_ID", "MLFLOW_EXPERIMENT_NAME",
                    "MLFLOW_ALLOW_PICKLE_DESERIALIZATION"):
            mp.delenv(var, raising=False)
        mp.chdir(root)
        for arch in ARCHS:
            one = dict(common, arch=arch, model_path=common["model_path"] if arch == "bert" else None)
            train_stage(plan("train", profile="default", **one, seeds=[0], epochs=1), progress=False)
            prune_stage(plan("prune", profile="default", **one, criteria=["magnitude"], schedules=["os"], methods=None, sparsities=[0.5], seeds=[0],
                             recovery_steps=0), progress=False)
            name = tracking.registered_model_name("synthetic_nli", arch)
            tracking.set_champion(name, tracking.version_by_alias(name, PRUNED).version,
                                  {"champion_reason": "the test's pick"})
        yield {"root": root, "uri": f"sqlite:///{root}/mlflow.db"}


TEXTS = [["A man is playing a guitar on the stage.", "A man is playing music."],
         ["A woman is reading a book in the park.", "Nobody is reading."]]


def _ours(arch: str, root):
    """Our classifier's answer: the version loaded with pie_mlops.models, then the same table."""
    import pandas as pd

    from pie_mlops import tracking
    from pie_mlops.tracking.serving import predict_frame

    name = tracking.registered_model_name("synthetic_nli", arch)
    model = tracking.load_version(name, "champion", root / f"ours-{arch}")
    config = {"task": "single_label", "label_names": ["entailment", "neutral", "contradiction"], "threshold": None}
    return model, predict_frame(model, pd.DataFrame(TEXTS, columns=["text", "text_pair"]), config)


@pytest.mark.parametrize("arch", ARCHS)
def test_champion_is_sparse_and_loads_with_pickle_off(store, arch):
    import mlflow.pyfunc
    import pandas as pd

    from pie_mlops import tracking
    from pie_mlops.models.common import WEIGHTS_NAME
    from pie_mlops.models.sparse import _metadata
    from pie_mlops.pruning.criteria import prunable_weights
    from pie_mlops.pruning.masks import sparsity_report

    model, ours = _ours(arch, store["root"])
    meta = _metadata(next((store["root"] / f"ours-{arch}").rglob(WEIGHTS_NAME)))
    assert "pie_base" in meta and "pie_masked" in meta  # os: masks over its dense version (models/delta.py)
    assert sparsity_report(prunable_weights(model))["achieved_sparsity"] == pytest.approx(0.5, abs=1e-3)
    assert "MLFLOW_ALLOW_PICKLE_DESERIALIZATION" not in os.environ
    name = tracking.registered_model_name("synthetic_nli", arch)
    answer = mlflow.pyfunc.load_model(f"models:/{name}@champion").predict(
        pd.DataFrame(TEXTS, columns=["text", "text_pair"]))
    pd.testing.assert_frame_equal(answer, ours)
    mv = tracking.version_by_alias(name, "champion")
    assert "Group magnitude-os@0.50, seed 0, sparsity 0.5" in mv.description
    assert mv.description.endswith("Champion: the test's pick")


@contextmanager
def _served(store, name: str, tmp_path):
    """`mlflow models serve` of `models:/<name>@champion` on 127.0.0.1; yields its URL."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_ALLOW_PICKLE_DESERIALIZATION"}
    # The README's command as typed in a fresh shell: the venv's mlflow by its path, the venv
    # not on PATH (MLflow starts `uvicorn` from PATH: pie_mlops/tracking/plugin.py finds it).
    path = [p for p in env.get("PATH", "").split(os.pathsep) if p and Path(p).resolve() != BIN.resolve()]
    env.update(MLFLOW_TRACKING_URI=store["uri"], PATH=os.pathsep.join(path or ["/usr/bin", "/bin"]))
    assert shutil.which("uvicorn", path=env["PATH"]) is None
    log = open(tmp_path / "serve.log", "w")
    proc = subprocess.Popen([str(BIN / "mlflow"), "models", "serve", "-m", f"models:/{name}@champion",
                             "--env-manager", "local", "-h", "127.0.0.1", "-p", str(port), "-w", "1"],
                            cwd=store["root"], env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(240):
            if proc.poll() is not None:
                pytest.fail(f"mlflow models serve exited {proc.returncode}: "
                            f"{(tmp_path / 'serve.log').read_text()[-2000:]}")
            try:
                if urllib.request.urlopen(f"{url}/ping", timeout=2).status == 200:
                    break
            except OSError:
                time.sleep(0.5)
        else:
            pytest.fail("the scoring server did not answer /ping in 2 minutes")
        yield url
    finally:
        stop_group(proc)
        log.close()


def _invoke(url: str, body: dict) -> tuple[int, dict]:
    req = urllib.request.Request(f"{url}/invocations", data=json.dumps(body).encode(),
                                 headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=60) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"{}")


@pytest.mark.parametrize("arch", ARCHS)
def test_mlflow_models_serve_answers_like_our_classifier(store, arch, tmp_path):
    from pie_mlops import tracking

    name = tracking.registered_model_name("synthetic_nli", arch)
    with _served(store, name, tmp_path) as url:
        status, answer = _invoke(url, {"dataframe_split": {"columns": ["text", "text_pair"], "data": TEXTS}})
    assert status == 200, answer
    served = answer["predictions"]
    _, ours = _ours(arch, store["root"])
    assert [r["label"] for r in served] == ours["label"].tolist()
    assert [r["label_name"] for r in served] == ours["label_name"].tolist()
    names = [c for c in ours.columns if c.startswith("prob_")]
    assert np.allclose([[r[c] for c in names] for r in served], ours[names].to_numpy(), rtol=0, atol=1e-9)


def test_mlflow_models_serve_answers_400_to_values_that_are_not_text(store, tmp_path):
    """Issue 30 §6: `[[123, null]]` and `[[{"a": 1}, [1, 2]]]` answered 200 with a prediction,
    MLflow's schema check passing them through an object column; now 400 naming row and column."""
    from pie_mlops import tracking

    cols = ["text", "text_pair"]
    with _served(store, tracking.registered_model_name("synthetic_nli", "bilstm"), tmp_path) as url:
        cases = {"row 0: 'text' is int 123, not a string": [[123, None]],
                 "row 0: 'text' is dict {\"a\": 1}, not a string": [[{"a": 1}, [1, 2]]],
                 "row 1: 'text_pair' is list [1, 2], not a string": [TEXTS[0], ["fine", [1, 2]]],
                 "row 0: 'text' is null, not a string": [[None, "a pair"]],
                 "row 0: 'text' is blank": [["  ", "a pair"]]}
        for needle, data in cases.items():
            status, answer = _invoke(url, {"dataframe_split": {"columns": cols, "data": data}})
            assert status == 400 and needle in answer.get("message", ""), (data, status, answer)
        status, answer = _invoke(url, {"dataframe_split": {"columns": cols, "data": [[TEXTS[0][0], None]]}})
        assert status == 200 and len(answer["predictions"]) == 1, answer  # a null pair is the contract's


def test_every_model_run_records_its_data_and_context(store):
    """Lineage: each train and prune run has one dataset input per split, digest = its data_md5;
    MLflow's own context tags are on every run (the git commit too in a repository: the UI test)."""
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=store["uri"])
    runs = client.search_runs([e.experiment_id for e in client.search_experiments()], "tags.stage != ''")
    assert sorted(r.data.tags["stage"] for r in runs) == ["prune", "prune", "train", "train"]
    for run in runs:
        inputs = run.inputs.dataset_inputs
        assert {i.dataset.digest for i in inputs} == {run.data.tags["data_md5"]}
        assert sorted((i.dataset.name, [t.value for t in i.tags if t.key == "mlflow.data.context"][0])
                      for i in inputs) == [("synthetic_nli/test", "test"), ("synthetic_nli/train", "train"),
                                           ("synthetic_nli/validation", "validation")]
        assert json.loads(inputs[0].dataset.source)["uri"].endswith(f"/synthetic_nli/{inputs[0].dataset.name[14:]}.parquet")
        tags = run.data.tags
        assert tags.get("mlflow.source.name") and tags.get("mlflow.source.type") and tags.get("mlflow.user")


def test_deleting_the_dense_version_leaves_its_os_versions_loadable(store):
    """docs/serving.md: an `os` version is a delta whose base is the dense version's *logged
    model* (found by its id), not the version: deleting the dense version (last in this module:
    it changes the store) leaves the pruned version loading bit-identically."""
    import mlflow.pyfunc
    import pandas as pd
    from mlflow import MlflowClient

    from pie_mlops import tracking

    name = tracking.registered_model_name("synthetic_nli", "bilstm")
    before = mlflow.pyfunc.load_model(f"models:/{name}@champion").predict(pd.DataFrame(TEXTS, columns=["text", "text_pair"]))
    client = MlflowClient(store["uri"])
    dense = client.get_model_version_by_alias(name, "dense-s0")
    client.delete_model_version(name, dense.version)
    assert tracking.version_by_alias(name, "dense-s0") is None
    after = mlflow.pyfunc.load_model(f"models:/{name}@champion").predict(pd.DataFrame(TEXTS, columns=["text", "text_pair"]))
    pd.testing.assert_frame_equal(before, after)
