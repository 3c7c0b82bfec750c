"""No sentence in the report asserts a finding (issue 29): captions describe what a plot shows,
and the verdict words appear only in the claims table, where claims.json puts them."""

from __future__ import annotations

import re
import shutil

from compare_fixture import make_study
from pie_mlops.stages.compare_study import compare
from plans import plan
from pie_mlops.report.build import build_report

# Sentences the report once printed whatever the data showed.
FINDINGS = ("barely moves", "accuracy on PIEs collapses", "Pruning keeps a model", "lie clearly above",
            "which model is more prone")
VERDICTS = re.compile(r"\b(holds|refuted|inconclusive)\b")


def test_captions_describe_and_verdicts_come_from_the_claims_table(tmp_path):
    data_dir, preds = make_study(tmp_path / "study")
    root = tmp_path / "compare"
    params = plan("compare", profile="default", dataset="synthetic_nli", arch="bert", data_dir=str(data_dir),
                  out=str(root / "synthetic_nli" / "bert"), split="test", min_seeds=3, n_boot=20)
    compare(params, preds, progress=False)
    shutil.copytree(root / "synthetic_nli" / "bert", root / "synthetic_nli" / "bilstm")
    html = build_report(root, tmp_path / "pies").read_text(encoding="utf-8")
    html = re.sub(r'src="data:[^"]+"', "", html)
    # The claims table (the paper's statements beside our verdicts) is the first <table> after
    # its heading; outside it, no finding and no verdict word.
    head, *sections = html.split("<h2>The paper's claims")
    tables = [s.partition("</table>") for s in sections]
    assert tables and all(VERDICTS.search(re.sub(r"<[^>]+>", " ", t[0])) for t in tables)  # the verdicts
    outside = re.sub(r"<[^>]+>", " ", head + "".join(t[2] for t in tables))
    for phrase in FINDINGS:
        assert phrase not in outside, phrase
    assert not VERDICTS.search(outside), VERDICTS.search(outside)
