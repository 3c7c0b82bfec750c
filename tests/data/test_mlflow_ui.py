"""`mlflow run . -e main -P profile=tiny` on a fresh clone, then the MLflow UI over the store it
made, in a real browser: `mlflow server` on 127.0.0.1 and Debian's Chromium driven headless
by Playwright. Screenshots land in reports/ui/ (gitignored) for a human to look at."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from conftest import BIN, ROOT, clone_project
from servers import mlflow_server

CHROMIUM = "/usr/bin/chromium"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run"]
SHOTS = ROOT / "reports" / "ui"

pytestmark = pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="needs Debian's chromium (.ci/run installs it)")


@pytest.fixture(scope="module")
def main_run(tmp_path_factory):
    """The whole tiny study through MLflow Projects' `main` entry point, as a user would."""
    repo = clone_project(tmp_path_factory.mktemp("ui") / "repo")
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    env.update(MLFLOW_DISABLE_TELEMETRY="true", PATH=f"{BIN}{os.pathsep}{env.get('PATH', '')}")
    out = subprocess.run(["mlflow", "run", ".", "-e", "main", "-P", "profile=tiny", "--env-manager", "local"],
                         cwd=repo, env=env, capture_output=True, text=True, timeout=900)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    return {"repo": repo, "log": out.stdout + out.stderr}


def test_mlflow_run_main_with_the_tiny_profile(main_run):
    repo, log = main_run["repo"], main_run["log"]
    assert "study finished (process)" in log and "reports/tiny/pies/index.html" in log
    assert (repo / "reports" / "tiny" / "pies" / "index.html").is_file()
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=f"sqlite:///{repo}/mlflow.db")
    for arch, seeds in (("bert", 3), ("bilstm", 8)):  # profiles/tiny.yaml
        versions = client.search_model_versions(f"name = 'pie-synthetic_longtail-{arch}'")
        assert len(versions) == seeds + 2 * seeds  # dense, and magnitude-os at 0.3 and 0.9
    runs = client.search_runs([e.experiment_id for e in client.search_experiments()], max_results=1000)
    assert not [r for r in runs if r.info.status != "FINISHED"]
    assert [r for r in runs if r.data.tags.get("mlflow.project.entryPoint") == "main"]  # MLflow's own run
    # ... in the project's experiment, as every other run (not in Default: pie_mlops/tracking/plugin.py)
    assert {r.info.experiment_id for r in runs} == {client.get_experiment_by_name("pie-mlops").experiment_id}
    # Data lineage: every model run (and compare) records its splits as dataset inputs whose
    # digest is its DVC data version; MLflow's own context tags are on every run.
    staged = [r for r in runs if r.data.tags.get("stage") in ("train", "prune", "compare")]
    assert len(staged) == 3 * 3 + 3 * 8 + 2
    for run in staged:
        tags = run.data.tags
        inputs = run.inputs.dataset_inputs
        contexts = {t.value for i in inputs for t in i.tags if t.key == "mlflow.data.context"}
        assert contexts == ({"test", "train"} if tags["stage"] == "compare" else {"train", "validation", "test"})
        assert {i.dataset.digest for i in inputs} == {tags["data_md5"]} and tags["data_md5"] != "untracked"
        assert {i.dataset.name for i in inputs} == {f"synthetic_longtail/{c}" for c in contexts}
        assert tags.get("mlflow.source.git.commit") and tags.get("mlflow.source.type") and tags.get("mlflow.user")


@pytest.fixture(scope="module")
def server(main_run):
    repo = main_run["repo"]
    with mlflow_server(f"sqlite:///{repo}/mlflow.db", repo / "mlartifacts", repo, proxied=False) as url:
        yield url


@pytest.fixture(scope="module")
def page(server):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=FLAGS[1:])
        page = browser.new_page(viewport={"width": 1800, "height": 1000})
        page.set_default_timeout(30_000)
        yield page
        browser.close()


def _tidy(page) -> None:
    """Close the assistant side panel (if shown) so the screenshots show the runs."""
    close = page.locator("button[aria-label='Close']")
    if close.count() and close.first.is_visible():
        close.first.click()


def _add_columns(page, section: str, names: list[str]) -> None:
    """Tick columns in the runs table's Columns picker, from one section (Tags, Metrics...)."""
    page.get_by_role("button", name="Columns", exact=True).click()
    for name in names:
        page.get_by_placeholder("Search columns").fill(name)
        nodes = page.locator(".du-bois-light-tree-treenode")
        nodes.filter(has_text=f"{section} (").first.wait_for()
        texts = [t.strip() for t in nodes.all_inner_texts()]
        start = next(i for i, t in enumerate(texts) if t.startswith(f"{section} ("))
        pick = next(i for i, t in enumerate(texts) if i > start and t == name)
        nodes.nth(pick).locator(".du-bois-light-tree-checkbox").click()
    page.keyboard.press("Escape")


def test_experiment_lists_dense_and_pruned_runs_with_their_columns(page, server, main_run):
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=f"sqlite:///{main_run['repo']}/mlflow.db")
    exps = [e.experiment_id for e in client.search_experiments()]
    compare = client.search_runs(exps, "tags.stage = 'compare' and tags.arch = 'bert'")[0]
    exp_id = compare.info.experiment_id  # under `mlflow run`, the experiment MLflow chose
    page.goto(f"{server}/#/experiments/{exp_id}/runs?workflowType=machine_learning")
    page.get_by_text("matching runs").wait_for()
    _tidy(page)
    # The stage runs are nested under the run `mlflow run` made: expand it.
    page.locator("button[data-component-id*='runnamecellrenderer']").first.click()
    page.get_by_text("synthetic_longtail-bert-dense-s0").first.wait_for()
    body = page.inner_text("body")
    for name in ("synthetic_longtail-bert-dense-s1", "synthetic_longtail-bilstm-magnitude-os@0.90-s1",
                 "compare synthetic_longtail/bert", "compare synthetic_longtail/bilstm"):
        assert name in body, name
    _add_columns(page, "Tags", ["group", "sparsity", "seed"])
    _add_columns(page, "Metrics", ["magnitude-os-0.90/pie_share"])
    headers = set(page.get_by_role("columnheader").all_inner_texts())
    assert {"group", "sparsity", "seed", "magnitude-os-0.90/pie_share"} <= headers, headers
    assert any(h.startswith("Dataset") for h in headers), headers  # data lineage: the runs' inputs
    page.get_by_text("synthetic_longtail/train").first.wait_for()  # a cell of that column
    page.get_by_text("magnitude-os@0.90").first.wait_for()  # a group cell
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / "experiment_runs.png"))

    page.goto(f"{server}/#/experiments/{exp_id}/runs/{compare.info.run_id}")
    page.get_by_text("magnitude-os-0.90/pie_share").first.wait_for()  # the compare run's metrics
    assert "magnitude-os-0.30/n_pies" in page.inner_text("body")
    page.screenshot(path=str(SHOTS / "compare_run.png"), full_page=True)


def test_registered_model_page_shows_the_aliases(page, server):
    page.goto(f"{server}/#/models/pie-synthetic_longtail-bert")
    page.get_by_text("dense-s0").first.wait_for()
    body = page.inner_text("body")
    for alias in ("dense-s2", "magnitude-os-0_30-s0", "magnitude-os-0_90-s1"):
        assert alias in body, alias
    assert "PIE study of synthetic_longtail with bert" in body  # the registered model's description
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / "registered_model.png"), full_page=True)
