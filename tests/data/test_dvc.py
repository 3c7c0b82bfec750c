"""DVC for real, in a temporary git repo: the committed data.dvc matches a fresh materialize,
and `dvc repro` runs the quality gate, which stops the pipeline when the data is bad."""

import json

import pandas as pd

from conftest import run
from pie_mlops.data.contract import read_dataset, write_dataset


def test_fresh_clone_materialize_leaves_dvc_status_clean(project_repo):
    # The full default: every shipped dataset, exactly as a fresh clone would make it. The data
    # and the committed dvc.lock of the quality gate are clean (the study's later stages have
    # not run yet on a fresh clone; tests/data/test_pipeline.py runs them).
    out = run(["pie-mlops", "materialize"], project_repo)
    assert "matches data.dvc (cached)" in out.stdout  # a fresh clone has no DVC cache yet
    status = run(["dvc", "status", "--json", "data.dvc", "check"], project_repo)
    assert json.loads(status.stdout) == {}, status.stdout
    run(["git", "diff", "--exit-code", "data.dvc"], project_repo)  # the committed version, byte for byte
    # PIE subsets that `compare` exports beside the data do not change the data version.
    meta_, splits = read_dataset(project_repo / "data" / "synthetic_nli")
    write_dataset(project_repo / "data", "synthetic_nli__pies_magnitude-os-0_50__bert",
                  {k: v.head(3) for k, v in splits.items()}, dict(meta_, name="synthetic_nli__pies_x"))
    assert json.loads(run(["dvc", "status", "--json", "data.dvc", "check"], project_repo).stdout) == {}
    # ...and DVC does notice a real change.
    meta = project_repo / "data" / "synthetic_nli" / "meta.json"
    meta.write_text(meta.read_text().replace('"synthetic": true', '"synthetic": false'))
    changed = json.loads(run(["dvc", "status", "--json", "data.dvc"], project_repo).stdout)
    assert changed == {"data.dvc": [{"changed outs": {"data": "modified"}}]}


def test_dvc_repro_runs_the_gate_and_a_failure_stops_it(tiny_repo):
    run(["pie-mlops", "materialize"], tiny_repo)
    out = run(["dvc", "repro", "--force", "check"], tiny_repo)
    assert "Running stage 'check@synthetic_nli'" in out.stdout
    assert (tiny_repo / "reports/data_checks/synthetic_nli/result.json").is_file()
    assert "up to date" in run(["dvc", "repro", "check"], tiny_repo).stdout.lower()

    # Leak a training text into test: the gate must fail and dvc repro must exit non-zero.
    path = tiny_repo / "data" / "synthetic_nli"
    meta, splits = read_dataset(path)
    leaked = splits["train"].iloc[[0]].assign(example_id="leaked-0")
    splits["test"] = pd.concat([splits["test"], leaked], ignore_index=True)
    write_dataset(tiny_repo / "data", "synthetic_nli", splits, meta)
    failed = run(["dvc", "repro"], tiny_repo, check=False)  # the whole pipeline: the gate stops it
    assert failed.returncode != 0
    assert "no_train_test_leakage" in failed.stdout + failed.stderr
    assert "Running stage 'tune" not in failed.stdout  # nothing trained on bad data
