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
import urllib.request
from pathlib import Path

import numpy as np
import pytest

from conftest import BIN
from servers import free_port, stop_group
from stage_fixtures import tiny_study

from pie_mlops.stages.prune import DEFAULTS as PRUNE
from pie_mlops.stages.prune import prune as prune_stage
from pie_mlops.stages.train import DEFAULTS as TRAIN
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
            plan = dict(common, arch=arch, model_path=common["model_path"] if arch == "bert" else None)
            train_stage(dict(TRAIN, **plan, seeds=[0], epochs=1), progress=False)
            prune_stage(dict(PRUNE, **plan, criteria=["magnitude"], schedules=["os"], methods=None, sparsities=[0.5], seeds=[0],
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
    from pie_mlops.models.serving import predict_frame

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
    from pie_mlops.pruning.criteria import prunable_weights, sparsity_report

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


@pytest.mark.parametrize("arch", ARCHS)
def test_mlflow_models_serve_answers_like_our_classifier(store, arch, tmp_path):
    from pie_mlops import tracking

    name = tracking.registered_model_name("synthetic_nli", arch)
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
        body = json.dumps({"dataframe_split": {"columns": ["text", "text_pair"], "data": TEXTS}}).encode()
        req = urllib.request.Request(f"{url}/invocations", data=body, headers={"Content-Type": "application/json"})
        served = json.loads(urllib.request.urlopen(req, timeout=60).read())["predictions"]
    finally:
        stop_group(proc)
        log.close()
    _, ours = _ours(arch, store["root"])
    assert [r["label"] for r in served] == ours["label"].tolist()
    assert [r["label_name"] for r in served] == ours["label_name"].tolist()
    names = [c for c in ours.columns if c.startswith("prob_")]
    assert np.allclose([[r[c] for c in names] for r in served], ours[names].to_numpy(), rtol=0, atol=1e-9)


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
