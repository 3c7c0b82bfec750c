"""`make tiny` on a fresh clone, as a new user meets it (issue 29): the tiny profile shows the
product working. One run (a module fixture) of `pie-mlops --profile tiny study` in a fresh
clone whose params.yaml is the default, then:

1. the dense models clear the baseline gate (on), at least one pruned group is eligible
   (not collapsed, above the noise floor) and a champion is chosen, and the planted effect
   is what pruning broke (the tail reviews of synthetic_longtail);
2. compare printed its summary: the claims with their verdicts, the champion, the report;
3. DVC reflects what ran: `dvc status` shows nothing tiny did (data.dvc and the checks
   clean, no stage touched), `dvc metrics show` and `dvc plots show` show tiny's outputs;
4. the README's champion load, serve and curl commands work on what it made.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

from conftest import BIN, clone_project, run
from servers import free_port, stop_group

DATASET = "synthetic_longtail"
COMPARE = Path("reports/tiny/compare") / DATASET


def _env() -> dict:
    env = dict(os.environ, PATH=f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}")
    for var in ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI", "MLFLOW_RUN_ID", "MLFLOW_EXPERIMENT_NAME"):
        env.pop(var, None)
    return env


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    import resource

    repo = clone_project(tmp_path_factory.mktemp("first_look") / "repo")
    start, before = time.perf_counter(), resource.getrusage(resource.RUSAGE_CHILDREN)
    proc = subprocess.run([str(BIN / "pie-mlops"), "--profile", "tiny", "study"], cwd=repo, env=_env(),
                          capture_output=True, text=True, timeout=2400)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    wall, cpu = time.perf_counter() - start, (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    print(f"make tiny: wall {wall:.0f} s, CPU {cpu:.0f} s (user+sys), load average {os.getloadavg()[0]:.1f}")
    return {"repo": repo, "out": proc.stdout, "err": proc.stderr, "wall_s": wall}


def _json(path: Path):
    return json.loads(path.read_text(encoding="utf-8"))


def test_the_gate_passes_pruning_breaks_the_planted_part_and_a_champion_is_chosen(tiny):
    import pandas as pd

    from pie_mlops.data.synthetic import is_tail

    repo = tiny["repo"]
    assert "ends at the trivial baseline" not in tiny["err"]
    champions, eligible = {}, []
    for arch in ("bert", "bilstm"):
        analysis = _json(repo / COMPARE / arch / "analysis.json")
        assert "baseline_gate" not in analysis, analysis.get("baseline_gate")  # the gate passed
        summary = _json(repo / COMPARE / arch / "summary.json")
        floor = summary["noise_floor"]["share"]
        # Every group went through the calibrated floor test (analysis/permutation.py).
        assert all(0 < s["floor_test"]["p_value"] <= 1 for g, s in summary.items() if isinstance(s, dict) and "n_pies" in s)
        # Eligible: not collapsed and above the noise floor by the calibrated test (Holm-adjusted
        # p below compare.alpha); measured: bilstm magnitude-os@0.90 at p = 2/2^8 before Holm.
        eligible += [f"{arch}/{g}" for g, s in summary.items()
                     if isinstance(s, dict) and "n_pies" in s and not s.get("collapsed") and s["above_floor"]]
        for g, s in summary.items():
            if isinstance(s, dict) and "n_pies" in s:
                print(f"{arch}/{g}: PIE share {s['pie_share']:.3f} (floor {floor:.3f}), "
                      f"p {s['floor_test']['p_value']:.4f}, Holm {s['floor_test']['p_holm']:.4f}")
        champions[arch] = _json(repo / COMPARE / arch / "champion.json").get("champion")
    assert eligible, "no pruned group eligible: none above the noise floor (floor_test.p_holm >= alpha)"
    assert any(champions.values()), champions
    # The planted effect: pruning breaks the tail reviews (one rare word) first, at least
    # 1.5x as often as the others (measured: 43% of them and none of the others at 0.9).
    arch, group = eligible[0].split("/", 1)
    pies = pd.read_parquet(repo / COMPARE / arch / "pies.parquet")
    texts = pd.read_parquet(repo / "data" / DATASET / "test.parquet").set_index("example_id")["text"]
    flags = pies[pies.group == group].set_index("example_id")["is_pie"].reindex(texts.index)
    tail = texts.map(is_tail)
    assert flags[tail].mean() > 0 and flags[tail].mean() >= 1.5 * flags[~tail].mean(), (flags[tail].mean(), flags[~tail].mean())


def test_compare_prints_its_summary(tiny):
    out = tiny["out"]
    assert f"compare summary ({DATASET})" in out
    for title in ("(a) Accuracy collapses on PIEs", "(e) The transformer is more prone"):
        line = next(x for x in out.splitlines() if title in x)
        assert any(v in line for v in ("holds", "refuted", "inconclusive")), line
    assert "champion" in out and "@champion" in out
    assert "reports/tiny/pies/index.html" in out
    # the default console: the 18-line check table only under -v (tests/code/test_console.py: -q)
    assert "  column_text " not in out and "text_not_null" not in out


def test_dvc_reflects_what_ran(tiny):
    repo = tiny["repo"]
    import yaml

    status = json.loads(run(["dvc", "status", "--json"], repo).stdout)
    # data.dvc and the committed checks are untouched; the default study's other stages have
    # not run on a fresh clone (they show as such), but nothing tiny wrote appears in them.
    # A check stage may differ from dvc.lock only by code (dvc.lock is refreshed after a
    # merge that changes it); a stage dvc.lock does not hold yet is new, not changed.
    assert "data.dvc" not in status, status["data.dvc"]
    locked = yaml.safe_load((repo / "dvc.lock").read_text(encoding="utf-8"))["stages"]
    for stage, entries in status.items():
        if stage.startswith("check@") and stage in locked:
            changed = {p for e in entries for kind in e.values() if isinstance(kind, dict) for p in kind}
            assert all(p.startswith("pie_mlops") for p in changed), (stage, entries)
    recorded = {k: v for k, v in status.items() if k in locked}  # new stages aside (see above)
    assert "reports/tiny" not in json.dumps(status) and DATASET not in json.dumps(recorded)
    # git too: the data version and tiny's committed dvc.yaml (regenerated identical) unchanged
    assert not run(["git", "status", "--porcelain", "data.dvc", "reports/tiny", "reports/data_checks"], repo).stdout
    metrics = json.loads(run(["dvc", "metrics", "show", "--json"], repo).stdout)
    files = {f for rev in metrics.values() for f in rev.get("data", {})}
    assert {f"reports/tiny/compare/{DATASET}/{a}/summary.json" for a in ("bert", "bilstm")} <= files, files
    run(["dvc", "plots", "show", "-o", "plots_out"], repo)
    page = (repo / "plots_out" / "index.html").read_text(encoding="utf-8")
    assert "PIE share against sparsity" in page and "_pies.png" in page


def _readme_block() -> list[str]:
    """The README's commands for what `make tiny` made (the block after its paragraph)."""
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    block = readme.split("`make tiny` runs", 1)[1].split("```bash", 1)[1].split("```", 1)[0]
    return block.replace("\\\n", " ").strip().splitlines()


def _bash(line: str, repo: Path, **kwargs):
    return subprocess.Popen(["bash", "-c", line], cwd=repo, env=_env(), text=True, **kwargs)


def test_the_readme_champion_commands_work(tiny, tmp_path):
    """The README's load, serve and curl lines, run as written (the port changed only)."""
    repo, lines = tiny["repo"], _readme_block()
    load = next(x for x in lines if x.startswith("python -c") and "@champion" in x)
    loaded = _bash(load, repo, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out, err = loaded.communicate(timeout=300)
    assert loaded.returncode == 0 and "label_name" in out, err[-2000:]
    port = str(free_port())
    serve = next(x for x in lines if x.startswith("mlflow models serve")).replace("5001", port)
    log = (tmp_path / "serve.log").open("w")
    proc = _bash(serve, repo, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        for _ in range(240):
            assert proc.poll() is None, (tmp_path / "serve.log").read_text()[-2000:]
            try:
                if urllib.request.urlopen(f"http://127.0.0.1:{port}/ping", timeout=2).status == 200:
                    break
            except OSError:
                time.sleep(0.5)
        curl = next(x for x in lines if x.startswith("curl")).replace("5001", port)
        answer = subprocess.run(["bash", "-c", curl], cwd=repo, capture_output=True, text=True, timeout=60)
    finally:
        stop_group(proc)
        log.close()
    predictions = json.loads(answer.stdout)["predictions"]
    assert predictions[0]["label_name"] in ("negative", "positive"), answer.stdout
