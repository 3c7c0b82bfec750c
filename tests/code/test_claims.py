"""The claims' verdict logic on hand-built summaries: eligibility (collapse, noise floor),
`inconclusive` without eligible groups, each claim's statistic and direction."""

import json

import pytest

from pie_mlops.analysis import claims as cl

FLOOR = {"share": 0.05, "ci": [0.03, 0.08], "seeds_per_side": 5, "n_dense_models": 10}
KEYS = ("a_pie_accuracy_collapse", "b_el2n_enrichment", "c_longer_more_complex", "d_class_independent",
        "e_transformer_more_prone")


def group(share=0.2, ci=(0.15, 0.25), collapsed=False, drop_pie=0.6, drop_all=0.02, n_models=5):
    return {"pie_share": share, "pie_share_ci": list(ci), "collapsed": collapsed, "majority_pred_share": 0.6,
            "n_models": n_models, "dense_modal_acc_pie": 0.9, "pruned_modal_acc_pie": 0.9 - drop_pie,
            "dense_modal_acc_all": 0.85, "pruned_modal_acc_all": 0.85 - drop_all}


def analysis(groups, enrich=(30, 1000, 100), tokens=(1.3, 1e-6), dale=(1.1, 1e-4), chi2_p=0.5):
    """enrich: (PIEs in the top 10%, training examples, PIEs in all); tokens/dale: (ratio, p)."""
    hits, n, total = enrich
    inf = {"n_train": n, "base_rate": total / n,
           "top10": {"n": n // 10, "pie_share": hits / (n // 10), "base_rate": total / n,
                     "enrichment": (hits / (n // 10)) / (total / n), "p_value": 0.0}}
    cx = {"n_tokens": {"ratio": tokens[0], "p_value": tokens[1]}, "dale_chall": {"ratio": dale[0], "p_value": dale[1]}}
    cls = {"chi2": 1.0, "p_value": chi2_p, "dense_acc_per_class": [0.9, 0.8], "pruned_acc_per_class": [0.85, 0.7]}
    return {"meta": {}, "influence": {g: inf for g in groups}, "complexity": {g: cx for g in groups},
            "classes": {g: cls for g in groups}}


def study(groups: dict, **kw):
    return {**groups, "noise_floor": FLOOR}, analysis(list(groups), **kw)


def test_groups_under_the_floor_or_collapsed_are_excluded_and_everything_is_inconclusive():
    s, a = study({"m-os@0.5": group(ci=(0.07, 0.12)),             # CI low under the floor's high end
                  "r-os@0.9": group(share=0.4, ci=(0.35, 0.45), collapsed=True)})
    out = cl.claims({"bert": s}, {"bert": a})
    for key in KEYS:
        assert out[key]["verdict"] == "inconclusive" and out[key]["groups"] == []
    assert set(out["a_pie_accuracy_collapse"]["excluded"]) == {"bert/m-os@0.5", "bert/r-os@0.9"}
    assert "collapsed" in out["a_pie_accuracy_collapse"]["excluded"]["bert/r-os@0.9"]
    assert out["seeds_per_group"] == {"bert": {"dense": 10, "pruned": 5, "floor_per_side": 5}}
    json.dumps(out, allow_nan=False)


def test_clear_effects_in_eligible_groups_hold():
    s, a = study({"m-os@0.5": group(), "m-ft@0.5": group(drop_pie=0.5), "r-os@0.5": group(drop_pie=0.7),
                  "bad-os@0.9": group(collapsed=True, drop_pie=-0.5)})
    out = cl.claims({"bert": s}, {"bert": a})
    a_ = out["a_pie_accuracy_collapse"]
    assert a_["verdict"] == "holds" and a_["statistic"] == pytest.approx((0.58 + 0.48 + 0.68) / 3)
    assert a_["ci"][0] > 0 and "bert/bad-os@0.9" not in a_["groups"] and len(a_["groups"]) == 3
    b = out["b_el2n_enrichment"]
    assert b["verdict"] == "holds" and b["statistic"] == pytest.approx(3.0)  # 30% of the top vs 10% base
    assert out["c_longer_more_complex"]["verdict"] == "holds"
    assert out["c_longer_more_complex"]["statistic"] == pytest.approx(1.3)
    assert out["d_class_independent"]["verdict"] == "holds"  # chi-square p 0.5: no class dependence
    assert out["d_class_independent"]["acc_drop_per_class"] == pytest.approx([0.05, 0.1])


def test_effects_against_the_paper_refute():
    s, a = study({"m-os@0.5": group(drop_pie=0.0, drop_all=0.1), "r-os@0.5": group(drop_pie=0.01, drop_all=0.2)},
                 enrich=(2, 1000, 100), tokens=(0.7, 1e-6), chi2_p=1e-9)
    out = cl.claims({"bert": s}, {"bert": a})
    assert out["a_pie_accuracy_collapse"]["verdict"] == "refuted"
    assert out["b_el2n_enrichment"]["verdict"] == "refuted"       # depleted: 2% of the top vs 10% base
    assert out["c_longer_more_complex"]["verdict"] == "refuted"   # PIEs significantly shorter
    assert out["d_class_independent"]["verdict"] == "refuted"     # PIEs concentrated in a class


def test_weak_or_mixed_evidence_is_inconclusive():
    # One group: a point, no interval over groups. Not significant after Holm: no vote.
    s, a = study({"m-os@0.5": group()}, enrich=(11, 1000, 100), tokens=(1.02, 0.3))
    out = cl.claims({"bert": s}, {"bert": a})
    assert out["a_pie_accuracy_collapse"]["verdict"] == "inconclusive"
    assert out["b_el2n_enrichment"]["verdict"] == "inconclusive"
    assert out["c_longer_more_complex"]["verdict"] == "inconclusive"


def test_transformer_against_bilstm_pairs_groups_where_either_clears_its_floor():
    names = ("m-os@0.5", "m-os@0.7", "r-os@0.5")
    bert, a1 = study({g: group(share=0.3 + 0.01 * i, ci=(0.25, 0.35)) for i, g in enumerate(names)})
    bilstm, a2 = study({**{g: group(share=0.15, ci=(0.12, 0.18)) for g in names[:2]},
                        "r-os@0.5": group(share=0.1, ci=(0.05, 0.12)),   # under its floor: a robust BiLSTM
                        "only-bilstm@0.9": group()})
    out = cl.claims({"bert": bert, "bilstm": bilstm}, {"bert": a1, "bilstm": a2})
    e = out["e_transformer_more_prone"]
    assert e["groups"] == ["m-os@0.5", "m-os@0.7", "r-os@0.5"] and e["verdict"] == "holds"
    # Excess over each floor (0.05 on both sides here): the floor cancels, the shares' difference remains.
    assert e["statistic"] == pytest.approx(((0.30 - 0.15) + (0.31 - 0.15) + (0.32 - 0.10)) / 3)
    assert e["ci"][0] > 0 and [d["direction"] for d in e["details"]] == [1, 1, 1]
    assert e["details"][2]["bilstm_excess_ci"] == pytest.approx([0.0, 0.07])
    reversed_ = cl.claims({"bert": bilstm, "bilstm": bert}, {"bert": a2, "bilstm": a1})["e_transformer_more_prone"]
    assert reversed_["verdict"] == "refuted"
    assert cl.claims({"bert": bert}, {"bert": a1})["e_transformer_more_prone"]["verdict"] == "inconclusive"


def test_transformer_pairs_skip_collapsed_and_both_under_floor_and_overlap_is_no_vote():
    bert, a1 = study({"m@0.5": group(share=0.3, ci=(0.25, 0.35)), "r@0.5": group(share=0.1, ci=(0.05, 0.1)),
                      "c@0.9": group(share=0.5, ci=(0.4, 0.6), collapsed=True)})
    bilstm, a2 = study({"m@0.5": group(share=0.25, ci=(0.2, 0.3)), "r@0.5": group(share=0.06, ci=(0.04, 0.1)),
                        "c@0.9": group(share=0.1, ci=(0.09, 0.11))})
    e = cl.claims({"bert": bert, "bilstm": bilstm}, {"bert": a1, "bilstm": a2})["e_transformer_more_prone"]
    assert e["groups"] == ["m@0.5"]          # r: both under their floors; c: the transformer's collapsed
    assert e["verdict"] == "inconclusive" and e["details"][0]["direction"] == 0   # [0.20,0.30] vs [0.15,0.25]
    assert e["ci"] == [None, None]           # one pair: no interval over pairs
    one, a3 = study({"m@0.5": group(share=0.25, ci=(0.23, 0.30))})
    robust, a4 = study({"m@0.5": group(share=0.07, ci=(0.04, 0.2))})  # the repro's RT shape: one pair, apart
    e = cl.claims({"bert": one, "bilstm": robust}, {"bert": a3, "bilstm": a4})["e_transformer_more_prone"]
    assert e["verdict"] == "holds" and e["details"][0]["direction"] == 1  # [0.18, 0.25] vs [-0.01, 0.15]


def test_vote_rules():
    assert cl.vote([1, 1, 0]) == "holds" and cl.vote([1, 1, -1]) == "inconclusive"
    assert cl.vote([-1, -1, 0]) == "refuted" and cl.vote([1, 0, 0]) == "inconclusive"
    assert cl.signed(1, 0.01) == 1 and cl.signed(-1, 0.2) == 0 and cl.signed(1, None) == 0
    assert cl.interval_verdict([0.1, 0.1]) == "inconclusive" and cl.interval_verdict([None, None]) == "inconclusive"


def test_a_collapsed_dense_group_excludes_every_group():
    s, a = study({"m-os@0.5": group()})
    s["noise_floor"] = {**FLOOR, "dense_collapsed": True, "dense_majority_pred_share": 0.99}
    out = cl.claims({"bert": s}, {"bert": a})
    assert out["a_pie_accuracy_collapse"]["verdict"] == "inconclusive"
    assert "dense" in out["a_pie_accuracy_collapse"]["excluded"]["bert/m-os@0.5"]


def test_the_report_table_says_each_claim_in_plain_words():
    from pie_mlops.report.claims import claims_html

    s, a = study({"m-os@0.5": group(), "r-os@0.5": group(drop_pie=0.5), "c-os@0.9": group(collapsed=True)})
    html = claims_html({"dataset": "rt", **cl.claims({"bert": s}, {"bert": a})})
    assert html.index("(a) Accuracy collapses on PIEs") < html.index("(e) The transformer is more prone")
    assert ">holds<" in html and ">inconclusive<" in html and "95% CI [" in html
    assert "bert/c-os@0.9" in html  # left out of every claim, and said so


def test_claims_json_sits_beside_the_arch_directories_or_inside_the_only_one(tmp_path):
    from pie_mlops.stages.claims import claims_path, compare_dirs, write_claims

    params = {"dataset": "rt", "arch": ["bert"], "out": str(tmp_path / "{dataset}" / "{arch}"), "seed": 0}
    assert claims_path(params) == tmp_path / "rt" / "claims.json"
    s, a = study({"m-os@0.5": group()})
    for arch in ("bert", "bilstm"):  # bilstm written by another (DVC) stage: read all the same
        d = tmp_path / "rt" / arch
        d.mkdir(parents=True)
        (d / "summary.json").write_text(json.dumps(s))
        (d / "analysis.json").write_text(json.dumps({**a, "meta": {"arch": arch}}))
    (tmp_path / "rt" / ".bert.tmp-x").mkdir()  # a staging directory is not a comparison
    assert set(compare_dirs(params)) == {"bert", "bilstm"}
    out = json.loads(write_claims(params).read_text())
    assert out["architectures"] == ["bert", "bilstm"] and set(out["seeds_per_group"]) == {"bert", "bilstm"}
    assert out["e_transformer_more_prone"]["groups"] == ["m-os@0.5"]
    other = dict(params, out=str(tmp_path / "{arch}-{dataset}"))
    assert claims_path(other) == tmp_path / "bert-rt" / "claims.json" and compare_dirs(other) == {}
    from pie_mlops.errors import PieError

    with pytest.raises(PieError, match="no comparison"):
        write_claims(other)
    (tmp_path / "rt" / "bert" / "summary.json").write_text("{not json")
    with pytest.raises(PieError, match="summary.json: unreadable"):
        write_claims(params)
