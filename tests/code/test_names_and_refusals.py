"""Issue 30 §2 and §6: one name check (vocabulary.check_name) at every entry point, so a dataset
name can never be a path out of the project or an illegal registered-model name; and the schema
refuses what would otherwise fail only after compute started. Each case: exit 2, one line, and
nothing written (no store, no report, no dataset)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pie_mlops.cli import main
from pie_mlops.util.errors import PieError

EVIL = "../../outside/evilds"


@pytest.fixture(autouse=True)
def _here(monkeypatch, tmp_path):
    work = tmp_path / "project"
    work.mkdir()
    monkeypatch.chdir(work)  # no params.yaml: the schema's defaults
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("MLFLOW_RUN_ID", raising=False)
    return work


def cli(capsys, *args: str) -> tuple[int, list[str]]:
    capsys.readouterr()
    try:
        main(list(args))
        code = 0
    except SystemExit as exc:
        code = exc.code
    return code, capsys.readouterr().err.strip().splitlines()


def _refused(capsys, *args: str, needle: str = "is not a dataset name") -> list[str]:
    code, err = cli(capsys, *args)
    assert code == 2 and len(err) == 1 and needle in err[0], (code, err)
    assert not Path("mlflow.db").exists() and not Path("mlartifacts").exists()  # refused before any store
    return err


def _outside_dataset(tmp_path: Path) -> Path:
    """A dataset outside the project that `EVIL` reaches from project/data/."""
    ds = tmp_path / "outside" / "evilds"
    ds.mkdir(parents=True)
    (ds / "meta.json").write_text(json.dumps({"name": "evilds", "task": "single_label", "label_names": ["a", "b"]}))
    return ds


def test_check(capsys, tmp_path):
    _outside_dataset(tmp_path)
    err = _refused(capsys, "check", EVIL)
    assert err[0].startswith("error: check: dataset '../../outside/evilds'")
    assert not list(tmp_path.rglob("result.json"))


@pytest.mark.parametrize("stage", ["train", "prune", "tune"])
def test_train_prune_tune(stage, capsys, tmp_path):
    _outside_dataset(tmp_path)
    _refused(capsys, stage, "--dataset", EVIL, "--arch", "bilstm")
    assert not (tmp_path / "outside" / "evilds" / "bilstm").exists()


def test_compare(capsys):
    _refused(capsys, "compare", "--dataset", "a:b", "--arch", "bilstm")


def test_materialize(capsys):
    _refused(capsys, "materialize", "--dataset", "../rotten_tomatoes")
    assert not Path("data").exists()


def test_import(capsys, tmp_path):
    (tmp_path / "in.csv").write_text("text,label\na,0\nb,1\n")
    _refused(capsys, "import", str(tmp_path / "in.csv"), "--name", "../escape", "--text-col", "text",
             "--label-col", "label")
    assert not (tmp_path / "escape").exists()


def test_worker(capsys):
    Path("params.yaml").write_text(f"study:\n  dataset: {EVIL}\n")
    err = _refused(capsys, "worker", "--max-jobs", "1")
    assert "params.yaml: study.dataset" in err[0]


def test_report(capsys):
    """A compare directory whose analysis.json names a path for its dataset, or a summary.json
    whose group is not a group name: refused before anything is written."""
    from pie_mlops.config.schema import Report
    from pie_mlops.stages.report import report

    study = Path("reports/compare/ds/bilstm")
    study.mkdir(parents=True)
    (study / "summary.json").write_text(json.dumps({"../../evil": {"sparsity": 0.5}}))
    (study / "analysis.json").write_text(json.dumps({"meta": {"dataset": "ds", "arch": "bilstm"}}))
    with pytest.raises(PieError, match=r"summary\.json: group '\.\./\.\./evil' is not"):
        report(Report())
    (study / "analysis.json").write_text(json.dumps({"meta": {"dataset": "../x", "arch": "bilstm"}}))
    _refused(capsys, "report", needle="dataset '../x' is not a dataset name")
    assert not Path("reports/pies").exists()


def test_the_stage_functions_check_too():
    """What a worker or a script calls, without the CLI in front: a plan, which refuses the name."""
    from pie_mlops.config.plans import resolve
    from pie_mlops.stages.train import train

    with pytest.raises(PieError, match=r"train\.dataset \(--dataset\): Value error, dataset '\.\./x' is not"):
        resolve("train", overrides={"dataset": "../x"}, arch="bilstm")
    with pytest.raises(TypeError, match="plans resolved for one architecture"):
        train({"dataset": "rotten_tomatoes", "arch": "bilstm", "data_dir": "data"})


@pytest.mark.parametrize("yaml_text, needle", [
    ("train:\n  seeds: [-1, 0]\n", "train.seeds.0: Input should be greater than or equal to 0"),
    ("train:\n  seeds: {bilstm: [0, 4294967296]}\n", "train.seeds.bilstm.1: Input should be less than"),
    ("prune:\n  methods: []\n", "prune.methods: List should have at least 1 item"),
    ("prune:\n  sparsities: [0.5, 1.0]\n", "prune.sparsities.1: Input should be less than 1"),
    ("train:\n  epochs: 0\n", "train.epochs: Input should be greater than or equal to 1"),
    ("train:\n  batch_size: {bert: 0, bilstm: 8}\n", "train.batch_size.bert: Input should be greater than or equal to 1"),
    ("train:\n  lr: -0.001\n", "train.lr: Input should be greater than 0"),
    ("train:\n  warmup_ratio: 1.5\n", "train.warmup_ratio: Input should be less than or equal to 1"),
    ("train:\n  max_length: {imdb: 2}\n", "train.max_length.imdb: Input should be greater than or equal to 8"),
    ("train:\n  snapshot_epochs: [0]\n", "train.snapshot_epochs.0: Input should be greater than or equal to 1"),
    ("train:\n  max_train_examples: 0\n", "train.max_train_examples: Input should be greater than or equal to 1"),
    ("train:\n  seed_processes: 0\n", "train.seed_processes: Input should be greater than or equal to 1"),
    ("train:\n  num_threads: {bilstm: 0}\n", "train.num_threads.bilstm: Input should be greater than or equal to 1"),
    ("prune:\n  recovery_steps: -1\n", "prune.recovery_steps: Input should be greater than or equal to 0"),
    ("tune:\n  n_trials: -1\n", "tune.n_trials: Input should be greater than or equal to 0"),
    ("materialize:\n  datasets: [a/b]\n", "materialize.datasets.0: Value error, dataset 'a/b' is not a dataset name"),
])
def test_the_schema_refuses_what_would_fail_after_compute_starts(yaml_text, needle, capsys):
    Path("p.yaml").write_text(yaml_text)
    code, err = cli(capsys, "--params", "p.yaml", "params")
    assert code == 2 and len(err) == 1 and needle in err[0], err


def test_a_negative_seed_on_the_command_line(capsys):
    _refused(capsys, "train", "--seeds", "-1,0", "--arch", "bilstm", "--dataset", "synthetic_nli",
             needle="command line: train.seeds.0 (--seeds): Input should be greater than or equal to 0")
