"""The whole compare stage in file mode with a dataset: core outputs, analyses, champion,
exported PIE datasets, DVC plot tables and the self-contained report."""

import json
import re

import pandas as pd
import pytest

from compare_fixture import make_study
from pie_mlops.data.contract import read_dataset
from pie_mlops.util.errors import PieError
from pie_mlops.compare.pie_datasets import export_name
from pie_mlops.stages.compare_study import compare
from plans import plan
from pie_mlops.report.build import build_report


def _params(data_dir, out, **kw):
    values = dict(dataset="synthetic_nli", arch="bert", data_dir=str(data_dir), out=str(out), split="test",
                  min_seeds=3, n_boot=20)
    return plan("compare", profile="default", **{**values, **kw})


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    root = tmp_path_factory.mktemp("study")

    def hook(frame):  # texts that must come out escaped in the report
        frame["text"] = "<script>alert(1)</script> & " + frame["text"]

    data_dir, preds = make_study(root, text_hook=hook)
    out = root / "out"
    [result] = compare(_params(data_dir, out), preds, progress=False)
    return {"root": root, "data": data_dir, "preds": preds, "out": out, "result": result}


def test_every_output_of_the_contract_is_written(study):
    out = study["out"]
    for name in ("pies.parquet", "summary.json", "analysis.json", "complexity.parquet", "pie_examples.parquet",
                 "champion.json", "plots/accuracy.csv", "plots/pies.csv", "plots/pie_share.csv",
                 "plots/el2n_bins.csv", "report/index.html"):
        assert (out / name).is_file(), name
    summary = json.loads((out / "summary.json").read_text())
    floor = summary.pop("noise_floor")  # 4 dense seeds, groups of 4: the floor can only be 2 vs 2
    assert (floor["seeds_per_side"], floor["groups_seeds_per_side"], floor["matched"]) == (2, 4, False)
    assert set(summary) == {"magnitude-os@0.50", "random-os@0.90"}
    noisy, mild = summary["random-os@0.90"], summary["magnitude-os@0.50"]
    assert noisy["n_pies"] > mild["n_pies"] > 0
    assert noisy["pruned_acc_pie"] < noisy["dense_acc_pie"]
    pies = pd.read_parquet(out / "pies.parquet")
    assert list(pies.columns) == ["group", "split", "example_id", "is_pie", "dense_label", "pruned_label",
                                  "dense_votes", "pruned_votes"]
    assert int(pies[pies["group"] == "random-os@0.90"]["is_pie"].sum()) == noisy["n_pies"]
    # The claims over every architecture on disk, written beside the compare directory.
    claims = json.loads((out / "claims.json").read_text())
    assert claims["architectures"] == ["bert"] and claims["seeds_per_group"]["bert"]["pruned"] == 4
    assert study["result"]["claims"] == str(out / "claims.json")


def test_analysis_json_follows_the_schema_and_is_strict_json(study):
    text = (study["out"] / "analysis.json").read_text()
    a = json.loads(text)
    assert "NaN" not in text and "Infinity" not in text
    assert set(a) == {"meta", "influence", "classes", "complexity", "stability", "noise_floor", "overlap",
                      "heldout", "vs_dense_long"}
    g = "random-os@0.90"
    inf = a["influence"][g]
    # The claims' statistics: held-out seeds (2 + 2 here), disjoint EL2N seeds, Cramér's V.
    assert a["heldout"][g]["half_split"]["seeds_per_half"] == [2, 2]
    assert {"did", "drop_pie", "drop_all", "per_class"} <= set(a["heldout"][g]["half_split"])
    assert inf["disjoint"]["n_dense_voters"] == 2 and len(inf["disjoint"]["el2n_seeds"]) == 2
    assert a["classes"][g]["cramers_v"]["value"] >= 0 and a["vs_dense_long"] == {}
    assert inf["snapshot"] == "train@epoch1" and len(inf["bins"]) == 20
    assert [b["bin"] for b in inf["bins"]] == list(range(1, 21))
    assert {"pie_share", "base_rate", "enrichment", "n"} <= set(inf["top5"])
    assert set(a["complexity"][g]) >= {"n_tokens", "n_chars", "flesch_reading_ease", "dale_chall", "difficult_words",
                                       "flesch_kincaid_grade", "gunning_fog", "type_token_ratio"}
    assert {"ratio", "p_value", "p_holm", "cliffs_delta", "u"} <= set(a["complexity"][g]["n_tokens"])
    assert a["stability"][g]["k"] == [2]  # disjoint draws of the 4 seeds: 2 + 2
    floor = a["noise_floor"]
    assert floor["k"] == 2 and floor["floor_low"] <= floor["floor_share"] <= floor["floor_high"]
    assert floor["groups"][g]["above_floor"] is True  # 45% flips are far above seed noise
    ov = a["overlap"]
    assert ov["groups"] == sorted(ov["groups"]) and ov["jaccard"][0][0] == 1.0
    assert ov["jaccard"][0][1] == ov["jaccard"][1][0]


def test_pie_subsets_are_exported_as_datasets_in_the_contract(study):
    pies = pd.read_parquet(study["out"] / "pies.parquet")
    for group in ("magnitude-os@0.50", "random-os@0.90"):
        meta, splits = read_dataset(study["data"] / export_name("synthetic_nli", group, "bert"))
        expected = set(pies[(pies["group"] == group) & pies["is_pie"]]["example_id"])
        assert set(splits["test"]["example_id"]) == expected
        assert len(splits["train"]) == 0 and len(splits["validation"]) == 0
        assert meta["parent"] == "synthetic_nli" and meta["group"] == group and meta["arch"] == "bert"
        assert splits["test"]["text_pair"].notna().all()  # sentence pairs stay pairs


def test_champion_is_recorded_with_its_reason(study):
    champ = json.loads((study["out"] / "champion.json").read_text())
    if champ.get("group") is None:
        assert "no pruned version" in champ["reason"]
    else:
        assert champ["group"] in ("magnitude-os@0.50", "random-os@0.90") and "sparsity" in champ["reason"]
    loose = study["root"] / "loose"
    before = sorted(p.name for p in study["data"].iterdir())
    [res] = compare(_params(study["data"], loose, champion_tolerance=1.0, export_pies=False), study["preds"],
                    progress=False)
    assert res["champion"]["group"] == "random-os@0.90"  # anything goes: the sparsest wins
    assert sorted(p.name for p in study["data"].iterdir()) == before


def test_the_report_is_self_contained_and_escapes_text(study):
    html = (study["out"] / "report" / "index.html").read_text()
    assert not re.search(r'(src|href)\s*=\s*["\']?https?:', html)
    assert "url(http" not in html
    assert "<script>alert(1)</script>" not in html and "&lt;script&gt;" in html
    assert html.count('src="data:image/png;base64,') >= 6
    for section in ("Accuracy against sparsity", "PIEs against sparsity", "Influence (EL2N)", "Class frequency",
                    "Complexity", "Stability over seeds", "Overlap between methods", "Example PIEs", "Every group"):
        assert section in html, section
    figures = list((study["out"] / "report" / "figures").glob("*.png"))
    assert len(figures) == html.count("<img")


def test_report_stage_gathers_compare_dirs_and_keeps_the_old_report_on_failure(study, tmp_path):
    import shutil

    other = tmp_path / "compare" / "synthetic_nli" / "bilstm"
    shutil.copytree(study["out"], other)
    analysis = json.loads((other / "analysis.json").read_text())
    analysis["meta"]["arch"] = "bilstm"
    (other / "analysis.json").write_text(json.dumps(analysis))
    shutil.copytree(study["out"], tmp_path / "compare" / "synthetic_nli" / "bert")
    out = tmp_path / "pies"
    index = build_report(tmp_path / "compare", out)  # finds <dataset>/<arch>/ under the root
    html = index.read_text()
    assert "Architectures compared" in html and "synthetic_nli/bilstm" in html and "synthetic_nli/bert" in html
    assert (out / "figures" / "architectures.png").is_file()
    before = index.read_bytes()
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "summary.json").write_text("{not json")
    (broken / "analysis.json").write_text("{}")
    with pytest.raises(PieError, match="malformed JSON"):
        build_report([study["out"], broken], out)
    assert index.read_bytes() == before
    with pytest.raises(PieError, match="no comparison found"):
        build_report(tmp_path / "nothing-here", out)


def test_predictions_of_another_dataset_are_refused(study, tmp_path):
    data_dir, _ = make_study(tmp_path, dataset="synthetic_nli", seeds=1)
    extra = pd.read_parquet(data_dir / "synthetic_nli" / "test.parquet").iloc[:-1]
    extra.to_parquet(data_dir / "synthetic_nli" / "test.parquet", index=False)
    with pytest.raises(PieError, match="do not cover exactly the dataset split"):
        compare(_params(data_dir, tmp_path / "o"), study["preds"], progress=False)
    assert not (tmp_path / "o").exists()


def test_multi_label_studies_report_per_label_pies(tmp_path):
    data_dir, preds = make_study(tmp_path, dataset="synthetic_topics", seeds=3)
    params = _params(data_dir, tmp_path / "out", dataset="synthetic_topics")
    [res] = compare(params, preds, progress=False)
    s = res["summary"]["random-os@0.90"]
    assert s["n_pies"] > 0 and sum(s["n_pies_per_label"].values()) >= s["n_pies"]
    a = json.loads((tmp_path / "out" / "analysis.json").read_text())
    assert a["meta"]["task"] == "multi_label" and a["classes"]["random-os@0.90"]["chi2"] is None
    assert (tmp_path / "out" / "report" / "index.html").is_file()


def test_a_collapsed_group_stays_in_the_table_but_not_in_the_largest_gap_headline(study, tmp_path):
    from pie_mlops.report.pies import Study, _headline, _study_html

    summary = json.loads((study["out"] / "summary.json").read_text())
    gap = {g: s["dense_acc_pie"] - s["pruned_acc_pie"] for g, s in summary.items() if g != "noise_floor"}
    worst, other = sorted(gap, key=gap.get, reverse=True)
    (tmp_path / "analysis.json").write_text((study["out"] / "analysis.json").read_text())
    (tmp_path / "summary.json").write_text(json.dumps(summary))
    assert f"Largest PIE accuracy gap: <b>{worst}</b>" in _headline(Study(tmp_path))
    summary[worst]["collapsed"] = True  # as the statistics flag a group predicting one class
    (tmp_path / "summary.json").write_text(json.dumps(summary))
    s = Study(tmp_path)
    head = _headline(s)
    assert f"Largest PIE accuracy gap: <b>{other}</b>" in head and "collapsed groups left out: 1" in head
    html = _study_html(s, {})
    assert "Collapsed groups" in html and worst in html.split("Collapsed groups", 1)[1]
