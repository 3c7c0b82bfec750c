"""A quiet, informative console (issue 29): the check table only under -v (or when a check
failed), -q leaves errors and summaries, `python -m pie_mlops` is the CLI, shell completion
works as the README says, the compare summary prints claims.json's verdicts word for word."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import BIN, ROOT


def _pie(args: list[str], cwd: Path, **env) -> subprocess.CompletedProcess:
    full = dict(os.environ, PATH=f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}", **env)
    return subprocess.run([str(BIN / "pie-mlops"), *args], cwd=cwd, env=full, capture_output=True, text=True)


@pytest.fixture(scope="module")
def nli(tmp_path_factory) -> Path:
    from pie_mlops.stages.materialize import materialize
    from plans import plan

    root = tmp_path_factory.mktemp("console")
    materialize(plan("materialize", data_dir=str(root / "data")), ["synthetic_nli"], progress=False)
    (root / "params.yaml").write_text((ROOT / "params.yaml").read_text(encoding="utf-8"), encoding="utf-8")
    return root


@pytest.mark.parametrize("flags, table, verdict", [([], False, True), (["-v"], True, True), (["-q"], False, False)])
def test_check_prints_its_verdict_and_the_table_only_under_verbose(nli, flags, table, verdict):
    proc = _pie([*flags, "check", "synthetic_nli"], nli, MLFLOW_TRACKING_URI=f"sqlite:///{nli}/mlflow.db")
    assert proc.returncode == 0, proc.stderr
    assert ("text_not_null" in proc.stdout) == table
    assert ("synthetic_nli: passed" in proc.stdout) == verdict
    assert "INFO mlflow" not in proc.stdout + proc.stderr or "-v" in flags


def test_python_dash_m_is_the_cli():
    proc = subprocess.run([sys.executable, "-m", "pie_mlops", "--help"], capture_output=True, text=True)
    assert proc.returncode == 0 and "Usage: pie-mlops" in proc.stdout and "study" in proc.stdout


def test_shell_completion_as_the_readme_documents_it(tmp_path):
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert 'eval "$(_PIE_MLOPS_COMPLETE=bash_source pie-mlops)"' in readme
    source = _pie([], tmp_path, _PIE_MLOPS_COMPLETE="bash_source")
    assert "_pie_mlops_completion" in source.stdout and "complete " in source.stdout
    words = _pie([], tmp_path, _PIE_MLOPS_COMPLETE="bash_complete", COMP_WORDS="pie-mlops stu", COMP_CWORD="1")
    assert "plain,study" in words.stdout


def test_compare_summary_uses_the_verdicts_of_claims_json():
    from pie_mlops.report.console import summary_text

    claims = {"dataset": "d", "a_pie_accuracy_collapse": {"verdict": "refuted", "statistic": -0.12,
                                                          "statistic_name": "gap", "ci": [-0.2, -0.05], "groups": ["g"]},
              "e_transformer_more_prone": {"verdict": "inconclusive", "statistic": None, "groups": []}}
    results = [{"dataset": "d", "arch": "bert", "out": "o/bert", "champion": {"group": "magnitude-os@0.30", "seed": 2,
                                                                             "version": 7}},
               {"dataset": "d", "arch": "bilstm", "out": "o/bilstm", "champion": None,
                "champion_reason": "no pruned model within 0.02 of dense"}]
    text = summary_text(claims, results, ["bilstm: stopped by the gate"])
    lines = text.splitlines()
    a = next(x for x in lines if "(a) Accuracy collapses" in x)
    assert "refuted" in a and "gap = -0.120" in a
    assert "95% CI [-0.200, -0.050]" in text and "inconclusive" in next(x for x in lines if "(e)" in x)
    assert "bert: champion magnitude-os@0.30 seed 2 v7 (models:/pie-d-bert@champion)" in text
    assert "bilstm: no champion: no pruned model within 0.02 of dense" in text
    assert "bilstm: stopped by the gate" in text and "report: o/bert/report/index.html" in text


@pytest.mark.parametrize("quiet", [False, True])
def test_compare_ends_with_its_summary_and_q_keeps_only_that(tmp_path, quiet):
    """`pie-mlops [-q] compare`: the per-group table is information (hidden by -q); the closing
    summary (claims, champion, report) prints either way."""
    from compare_fixture import make_study

    data_dir, preds = make_study(tmp_path / "study")
    (tmp_path / "params.yaml").write_text((ROOT / "params.yaml").read_text(encoding="utf-8"), encoding="utf-8")
    out = tmp_path / "cmp" / "synthetic_nli" / "bert"
    proc = _pie([*(["-q"] if quiet else []), "compare", "--predictions", str(preds), "--dataset", "synthetic_nli",
                 "--arch", "bert", "--out", str(out), "--data-dir", str(data_dir)], tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "compare summary (synthetic_nli)" in proc.stdout and "champion:" in proc.stdout
    assert f"report: {out}/report/index.html" in proc.stdout
    assert ("pruned@PIE" in proc.stdout) != quiet  # the per-group table: hidden by -q
