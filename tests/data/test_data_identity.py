"""Issue 17 item 1, on a real git + DVC repo: a partial materialize never rewrites data.dvc,
and a user import under a packaged name is replaced only on request."""

import json

import pandas as pd

from conftest import run


def test_partial_materialize_keeps_data_dvc_and_foreign_data(project_repo, tmp_path):
    committed = (project_repo / "data.dvc").read_text()
    out = run(["pie-mlops", "materialize", "--dataset", "synthetic_nli"], project_repo)
    assert "warning: data/ differs from data.dvc, which is left as it is" in out.stderr, out.stdout + out.stderr
    assert "is clean" not in out.stdout
    assert (project_repo / "data.dvc").read_text() == committed  # never rewritten to the partial version
    status = json.loads(run(["dvc", "status", "--json", "data.dvc"], project_repo).stdout)
    assert status != {}  # DVC still sees that data/ is not the committed version

    # A user import under the packaged name: materialize refuses to replace it without --overwrite.
    csv = tmp_path / "mine.csv"
    pd.DataFrame({"text": [f"my sentence number {i} about {'ab'[i % 2]}" for i in range(40)],
                  "label": ["a", "b"] * 20}).to_csv(csv, index=False)
    run(["pie-mlops", "import", str(csv), "--name", "synthetic_nli", "--text-col", "text", "--label-col", "label",
         "--overwrite"], project_repo)
    meta = project_repo / "data" / "synthetic_nli" / "meta.json"
    mine = meta.read_text()
    refused = run(["pie-mlops", "materialize"], project_repo, check=False)
    assert refused.returncode == 2, refused.stderr
    assert refused.stderr.strip().splitlines()[-1:] == [  # after the progress bar: one line
        f"error: data/synthetic_nli: holds a dataset from {csv} (csv), not the packaged synthetic_nli; "
        f"pass --overwrite to replace it, or import yours under another name"]
    assert meta.read_text() == mine and not (project_repo / "data" / "rotten_tomatoes").exists()  # nothing written
    assert (project_repo / "data.dvc").read_text() == committed

    # With --overwrite, every packaged dataset comes back: the committed version, now cached.
    out = run(["pie-mlops", "materialize", "--overwrite"], project_repo)
    assert "matches data.dvc (cached)" in out.stdout, out.stdout
    assert (project_repo / "data.dvc").read_text() == committed
    assert json.loads(run(["dvc", "status", "--json", "data.dvc"], project_repo).stdout) == {}
