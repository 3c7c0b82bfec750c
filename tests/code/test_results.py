"""A committed reproduction's README shows exactly its JSON's figures, and the renderer says
what each claim's figure is, on a hand-made case."""

from __future__ import annotations

from pathlib import Path

import pytest

from pie_mlops.report.results import figure, load, opening, readme_block, render

RESULTS = sorted((Path(__file__).resolve().parents[2] / "docs" / "results").glob("*/run.json"))


@pytest.mark.parametrize("run_json", RESULTS, ids=[p.parent.name for p in RESULTS])
def test_a_committed_readme_is_rendered_from_its_json(run_json):
    name, run, datasets = load(run_json.parent)
    assert datasets, f"{run_json.parent}: no <dataset>/claims.json"
    assert (run_json.parent / "README.md").read_text(encoding="utf-8") == render(name, run, datasets)


def test_the_readme_opening_shows_the_current_reproductions_json():
    """The README's opening block is the named reproduction's verdicts and figures, as rendered now."""
    root = Path(__file__).resolve().parents[2]
    block = readme_block((root / "README.md").read_text(encoding="utf-8"))
    assert block, "README.md: no <!-- reproduction: begin NAME --> block"
    name, text = block
    assert text == opening(*load(root / "docs" / "results" / name))


def test_a_claim_figure_carries_its_statistic_interval_and_groups():
    entry = {"verdict": "holds", "statistic": 0.4213, "statistic_name": "mean(drop on PIEs - drop on all)",
             "ci": [0.31, 0.52], "groups": ["bilstm/magnitude-ft@0.50", "bilstm/random-ai@0.90"], "paper": "p"}
    assert figure(entry) == "mean(drop on PIEs - drop on all) = 0.421, 95% CI [0.310, 0.520]; 2 group(s)"
    entry = {"verdict": "refuted", "statistic": 1.02, "statistic_name": "ratio", "p_value": 0.00012, "groups": ["g"]}
    assert figure(entry) == "ratio = 1.020, p = 1.2e-04; 1 group(s)"
    entry["decided_by"], entry["groups"] = "bilstm/magnitude-ft-layer@0.50", ["g1", "g2", "g3"]  # the primary rule
    assert figure(entry) == "ratio = 1.020, p = 1.2e-04; decided by bilstm/magnitude-ft-layer@0.50 (1 of 3 eligible group(s))"
    assert figure({"verdict": "inconclusive", "statistic": None, "note": "no eligible group"}) == \
        "no test (no eligible group)"


def test_render_lists_every_claim_and_group():
    claims = {"seeds_per_group": {"bilstm": 20},
              "a_pie_accuracy_collapse": {"verdict": "holds", "statistic": 0.5, "statistic_name": "s", "ci": [0.4, 0.6],
                                          "groups": ["bilstm/x"], "paper": "On PIEs accuracy collapses."}}
    summary = {"noise_floor": {"share": 0.02, "ci": [0.01, 0.03], "seeds_per_side": 10},
               "magnitude-ft@0.50": {"n_models": 20, "pie_share": 0.08, "pie_share_ci": [0.06, 0.1],
                                     "pruned_acc_all": 0.7, "pruned_modal_acc_pie": 0.1, "collapsed": False}}
    text = render("t", {"command": "c", "wall_s": 3600, "peak_rss_gib": 1.5, "machine": "m", "git_sha": "abc"},
                  {"rotten_tomatoes": {"claims": claims, "summaries": {"bilstm": summary}}})
    assert "| a | On PIEs accuracy collapses. | s = 0.500, 95% CI [0.400, 0.600]; 1 group(s) | **holds** |" in text
    assert "| magnitude-ft@0.50 | 20 | 0.080 [0.060, 0.100] | 0.700 | 0.100 | no |" in text
    assert "10 vs 10 seeds): 0.020 [0.010, 0.030]" in text
    assert "Deviations" not in text
    noted = render("t", {"command": "c", "notes": ["E = 1 for the BiLSTM"]}, {})
    assert "## Deviations and notes\n\n- E = 1 for the BiLSTM\n" in noted
    assert "In progress" not in noted
    gate = {"baseline": "the majority class (accuracy)", "value": 0.5778, "min_gain": 0.05, "split": "test",
            "scores": {"dense/s0": 0.712, "dense/s1": 0.747}, "passed": True}
    gated = render("t", {"command": "c", "dense_gate": {"rotten_tomatoes": {"bilstm": gate}}},
                   {"rotten_tomatoes": {"claims": claims, "summaries": {"bilstm": summary}}})
    assert ("Baseline gate: the majority class (accuracy) 0.578 on test; the 2 dense seeds score 0.712 to 0.747, "
            "every one at least 0.628 (+0.05): yes.") in gated
    running = render("t", {"command": "c", "status": "running", "collected": "2026-12-07 19:40 UTC",
                           "pending": ["rotten_tomatoes", "rotten_tomatoes@repro-e"]}, {})
    assert "**In progress.** Collected 2026-12-07 19:40 UTC while rotten_tomatoes, rotten_tomatoes@repro-e still ran" \
        in running
    top = opening("t", {"status": "running", "pending": ["rotten_tomatoes"]},
                  {"bbc_news": {"claims": claims, "summaries": {}}})
    assert "in progress: bbc_news collected, rotten_tomatoes still running" in top
    assert "| a | On PIEs accuracy collapses. | **holds**: s = 0.500, 95% CI [0.400, 0.600]; 1 group(s) |" in top
    assert readme_block("intro\n" + top + "rest\n") == ("t", top)


def test_reproduce_with_missing_outputs_says_so_in_one_line_and_leaves_nothing(project_repo):
    import subprocess
    import sys

    res = subprocess.run([sys.executable, "scripts/reproduce.py", "x", "--collect-only", "tiny"],
                         cwd=project_repo, capture_output=True, text=True)
    assert res.returncode == 2 and res.stderr.count("\n") == 1, res.stderr
    assert "claims.json" in res.stderr and "--collect-only" in res.stderr
    assert not (project_repo / "docs" / "results" / "x.tmp").exists()  # no half-written NAME.tmp
    assert not (project_repo / "docs" / "results" / "x").exists()


def test_write_opening_fills_the_block_or_says_there_is_none(tmp_path):
    from pie_mlops.report.results import write_opening
    from pie_mlops.util.errors import PieError

    result = sorted((Path(__file__).resolve().parents[2] / "docs" / "results").glob("*/run.json"))[-1].parent
    readme = tmp_path / "README.md"
    readme.write_text("# x\n\n<!-- reproduction: begin old -->\nstale\n<!-- reproduction: end -->\n\nrest\n")
    write_opening(readme, result)
    assert readme_block(readme.read_text()) == (result.name, opening(*load(result)))
    assert readme.read_text().startswith("# x\n\n") and readme.read_text().endswith("\n\nrest\n")
    readme.write_text("# no block\n")
    with pytest.raises(PieError, match="no `<!-- reproduction: begin NAME -->`"):
        write_opening(readme, result)


def test_reproduce_refuses_a_missing_notes_file_before_collecting(project_repo):
    import subprocess
    import sys

    res = subprocess.run([sys.executable, "scripts/reproduce.py", "x", "--collect-only", "tiny", "--notes", "nope.txt"],
                         cwd=project_repo, capture_output=True, text=True)
    assert res.returncode == 2 and res.stderr == "error: --notes nope.txt: no such file (one note per line)\n"
    assert not (project_repo / "docs" / "results" / "x").exists()
