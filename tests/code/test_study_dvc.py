"""DVC sees what ran (issue 29): dvc.yaml's metrics and plots follow the params (templated), and a
profile run outside DVC declares its own outputs in a dvc.yaml of their own, with no stage."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from conftest import ROOT

PROFILES = ["params.yaml", *sorted(str(p.relative_to(ROOT)) for p in (ROOT / "profiles").glob("*.yaml"))]


@pytest.mark.parametrize("name", PROFILES)
def test_compare_out_lies_under_the_report_root_dvc_yaml_templates(name):
    """dvc.yaml names compare's outputs `${report.compare_root}/${study.dataset}/${item}`:
    every profile's compare.out must be exactly that, or DVC would track other paths."""
    from pie_mlops.config.plans import load_all

    params = load_all(ROOT / name)
    out = params["compare"]["out"].format(dataset="D", arch="A")
    assert out == f"{params['report']['compare_root']}/D/A"


def test_dvc_yaml_paths_follow_the_params():
    text = (ROOT / "dvc.yaml").read_text(encoding="utf-8")
    assert "rotten_tomatoes" not in text and "reports/compare/" not in text and "predictions/" not in text
    plots = yaml.safe_load(text)["plots"]
    assert "${report.out}/figures" in plots  # images: they render with no network


def _outputs(root: Path, compare_root: str, out: str) -> None:
    arch = root / compare_root / "synthetic_longtail" / "bilstm"
    (arch / "plots").mkdir(parents=True)
    (arch / "summary.json").write_text("{}")
    (arch / "plots" / "pie_share.csv").write_text("sparsity,magnitude-os\n0.3,0.0\n0.9,0.3\n")
    (root / out / "figures").mkdir(parents=True)


def test_a_profile_outside_dvc_declares_its_metrics_and_plots(tmp_path, monkeypatch):
    from pie_mlops.config.study_dvc import declare

    monkeypatch.chdir(tmp_path)
    (tmp_path / ".dvc").mkdir()
    (tmp_path / "dvc.yaml").write_text("stages: {}\n")
    (tmp_path / "params.yaml").write_text((ROOT / "params.yaml").read_text(encoding="utf-8"))
    (tmp_path / "p.yaml").write_text("study: {dataset: synthetic_longtail}\n"
                                     "compare: {out: 'reports/tiny/compare/{dataset}/{arch}'}\n"
                                     "report: {compare_root: reports/tiny/compare, out: reports/tiny/pies}\n")
    _outputs(tmp_path, "reports/tiny/compare", "reports/tiny/pies")
    path = declare("p.yaml")
    assert path == tmp_path / "reports" / "tiny" / "dvc.yaml"
    spec = yaml.safe_load(path.read_text())
    assert set(spec) == {"metrics", "plots"}  # no stage: dvc status and dvc repro are untouched
    assert spec["metrics"] == ["compare/synthetic_longtail/bilstm/summary.json"]
    assert {"template": "linear", "x": "sparsity",
            "y": {"compare/synthetic_longtail/bilstm/plots/pie_share.csv": ["magnitude-os"]}} in [
        next(iter(p.values())) for p in spec["plots"] if isinstance(p, dict)]
    assert "pies/figures" in spec["plots"]


def test_the_default_outputs_are_left_to_dvc_yaml(tmp_path, monkeypatch):
    from pie_mlops.config.study_dvc import declare

    monkeypatch.chdir(tmp_path)
    (tmp_path / ".dvc").mkdir()
    (tmp_path / "dvc.yaml").write_text("stages: {}\n")
    (tmp_path / "params.yaml").write_text((ROOT / "params.yaml").read_text(encoding="utf-8"))
    _outputs(tmp_path, "reports/compare", "reports/pies")
    assert declare("params.yaml") is None and not list(tmp_path.rglob("reports/**/dvc.yaml"))
