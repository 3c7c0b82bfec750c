"""The claims' rules (docs/claims.md) on hand-built summaries and analyses: eligibility from
`above_floor`/`collapsed`, paper vs our methods, one primary group per claim, the margins of
(a) and (d1), the >= 3 pairs of (e), the dense-long control, rules versions."""

import json

import pytest

from pie_mlops.analysis import claim_rules as cr
from pie_mlops.analysis import claims as cl
from pie_mlops.analysis import enrichment_perm as ep

FLOOR = {"share": 0.05, "ci": [0.03, 0.08], "seeds_per_side": 5, "n_dense_models": 10}
PAPER_G, OS_G = "magnitude-ai-layer@0.50", "magnitude-os@0.50"


def boot(value, lo, hi, p=0.01):
    return {"value": value, "ci": [lo, hi], "p_value": p}


def group(share=0.2, ci=(0.15, 0.25), collapsed=False, above=True, n_models=5, n_dense=10, acc=(0.85, 0.84)):
    return {"pie_share": share, "pie_share_ci": list(ci), "collapsed": collapsed, "above_floor": above,
            "majority_pred_share": 0.6, "n_models": n_models, "n_dense_models": n_dense,
            "dense_acc_all": acc[0], "pruned_acc_all": acc[1]}


def sections(did=(0.3, 0.2, 0.4), overall=(0.005, -0.01, 0.015), odds=(2.0, 1e-4), perm=(0.2, 0.001, 0.999),
             tokens=(1.3, 1e-6),
             dale=(1.1, 1e-4), v=(0.05, 0.02, 0.08), per_class=((0.3, 0.2, 0.4), (0.2, 0.05, 0.35))):
    return {"heldout": {"half_split": {"did": boot(*did), "drop_pie": boot(did[0], 0, 1), "drop_nonpie": boot(0, 0, 0),
                                       "seeds_per_half": [5, 2],
                                       "per_class": [{"class": c, "n": 100 * (c + 1), **boot(*x)}
                                                     for c, x in enumerate(per_class)]},
                        "overall_drop": boot(*overall)},
            "influence": {"disjoint": {"odds_ratio": odds[0], "p_value": odds[1], "statistic": 9.0,
                                       "perm_test": {"statistic": ep.STATISTIC, "difference": perm[0],
                                                     "p_value": perm[1], "p_below": perm[2], "z": 3.0,
                                                     "excess_top": perm[0], "excess_rest": 0.0, "weight_top": 0.3,
                                                     "weight_rest": 0.1, "method": "paired_swap"}}},
            "complexity": {"n_tokens": {"ratio": tokens[0], "p_value": tokens[1]},
                           "dale_chall": {"ratio": dale[0], "p_value": dale[1]}},
            "classes": {"cramers_v": {"value": v[0], "ci": [v[1], v[2]]}}}


def study(groups: dict, **kw) -> tuple[dict, dict]:
    """groups: {name: (summary group, sections kwargs)} -> (summary.json, analysis.json)."""
    summary = {g: s for g, (s, _) in groups.items()} | {"noise_floor": FLOOR}
    an = {"meta": {"n_train_examples": kw.get("n_train", 1000)}, "heldout": {}, "influence": {}, "complexity": {},
          "classes": {}}
    for g, (_, k) in groups.items():
        for name, sec in sections(**k).items():
            an[name][g] = sec
    return summary, an


def test_method_kinds_and_the_preset_primary_order():
    assert cr.method_kind("impact-ft-layer@0.20") == "paper" and cr.method_kind("random-ai-layer@0.9") == "paper"
    for ours in ("magnitude-os@0.50", "magnitude-ft@0.50", "magnitude-os-structured@0.30", "magnitude-os-layer@0.5"):
        assert cr.method_kind(ours) == "ours"  # os, global threshold, structured
    assert cr.method_kind("dense-long") == "control"
    names = ["bilstm/magnitude-ft-layer@0.50", "bert/random-ai-layer@0.50", "bert/magnitude-ft-layer@0.90",
             "bert/magnitude-ft-layer@0.50", "bert/impact-wr-layer@0.50"]
    assert cr.primary_order(names)[:3] == ["bert/magnitude-ft-layer@0.50", "bilstm/magnitude-ft-layer@0.50",
                                           "bert/magnitude-ft-layer@0.90"]
    assert cr.primary_order(names, ["random-ai-layer@0.50"])[0] == "bert/random-ai-layer@0.50"


def test_os_groups_never_decide_a_paper_claim_and_go_to_our_methods():
    s, a = study({OS_G: (group(), {})})
    out = cl.claims({"bert": s}, {"bert": a})
    for key in cl.ROWS:
        assert out[key]["verdict"] == "inconclusive" and out[key]["groups"] == []
        assert [r["group"] for r in out["our_methods"][key]] == [f"bert/{OS_G}"]
        assert out["our_methods"][key][0]["verdict"] == "holds"   # the same statistics, in their own table
    assert out["our_groups"] == [f"bert/{OS_G}"] and out["paper_groups"] == []
    json.dumps(out, allow_nan=False)


def test_eligibility_comes_from_above_floor_and_collapsed():
    s, a = study({PAPER_G: (group(above=False), {}), "random-ai-layer@0.90": (group(collapsed=True), {}),
                  "impact-ai-layer@0.50": (group(), {})})
    s[PAPER_G]["floor_test"] = {"p_holm": 0.3}
    out = cl.claims({"bert": s}, {"bert": a})
    a_ = out["a_pie_accuracy_collapse"]
    assert a_["groups"] == ["bert/impact-ai-layer@0.50"] and a_["decided_by"] == "bert/impact-ai-layer@0.50"
    assert "0.3" in a_["excluded"][f"bert/{PAPER_G}"] and "collapsed" in a_["excluded"]["bert/random-ai-layer@0.90"]


def test_each_claim_is_decided_by_its_primary_group_and_shows_what_decided():
    s, a = study({PAPER_G: (group(), {}), "magnitude-ai-layer@0.90": (group(), {"did": (-0.2, -0.3, -0.1)})})
    a_ = cl.claims({"bert": s}, {"bert": a})["a_pie_accuracy_collapse"]
    assert a_["decided_by"] == f"bert/{PAPER_G}" and a_["verdict"] == "holds"   # 0.50 before 0.90
    assert a_["statistic"] == 0.3 and a_["ci"] == [0.2, 0.4] and a_["measure"] and a_["across_groups"] == "primary"
    assert [r["verdict"] for r in a_["secondary"]] == ["refuted"]                # reported, not counted


@pytest.mark.parametrize("overall, verdict", [((0.005, -0.01, 0.015), "holds"),    # within +-0.02
                                              ((0.03, 0.01, 0.05), "inconclusive"),  # straddles the margin
                                              ((0.10, 0.08, 0.12), "refuted")])      # overall accuracy moves
def test_a_needs_overall_accuracy_within_its_margin(overall, verdict):
    s, a = study({PAPER_G: (group(), {"overall": overall})})
    e = cl.claims({"bert": s}, {"bert": a})["a_pie_accuracy_collapse"]
    assert e["verdict"] == verdict and e["primary"]["overall_drop_ci"] == list(overall[1:])
    if verdict == "refuted":  # decided by the conjunct: the entry shows the overall drop, not the PIE statistic
        assert e["statistic"] == overall[0] and e["ci"] == list(overall[1:]) and "overall" in e["statistic_name"]
    else:
        assert e["statistic"] == 0.3 and e["primary"]["did_ci"] == [0.2, 0.4]


@pytest.mark.parametrize("v, verdict", [((0.05, 0.02, 0.08), "holds"), ((0.1, 0.06, 0.14), "inconclusive"),
                                        ((0.3, 0.2, 0.4), "refuted")])
def test_d1_cramers_v_equivalence_against_its_margin(v, verdict):
    s, a = study({PAPER_G: (group(), {"v": v})})
    assert cl.claims({"bert": s}, {"bert": a})["d1_class_proportional"]["verdict"] == verdict
    e = cl.claims({"bert": s}, {"bert": a}, rules={"class_v_margin": 0.5})["d1_class_proportional"]
    assert e["verdict"] == "holds"  # the margin is a rule: a wider one accepts more


def test_d2_needs_damage_in_every_class_rarest_included():
    s, a = study({PAPER_G: (group(), {})})
    e = cl.claims({"bert": s}, {"bert": a})["d2_damage_every_class"]
    assert e["verdict"] == "holds" and e["primary"]["rarest_class"] == 0
    s, a = study({PAPER_G: (group(), {"per_class": ((0.3, 0.2, 0.4), (0.0, -0.1, 0.1))})})
    assert cl.claims({"bert": s}, {"bert": a})["d2_damage_every_class"]["verdict"] == "inconclusive"
    s, a = study({PAPER_G: (group(), {"per_class": ((0.3, 0.2, 0.4), (-0.2, -0.3, -0.1, 0.001))})})
    assert cl.claims({"bert": s}, {"bert": a})["d2_damage_every_class"]["verdict"] == "refuted"


def test_b_is_decided_against_seed_noise_not_against_an_odds_ratio_of_1():
    def verdict(**k):
        s, a = study({PAPER_G: (group(), k)})
        return cl.claims({"bert": s}, {"bert": a})["b_el2n_enrichment"]
    # Rules 2026-12-07.1: the CMH result (OR 2.5, p 1e-10) is shown but no longer decides; the
    # excess PIE weight beyond seed noise does (2026-12-06.1 said `holds` here).
    b = verdict(odds=(2.5, 1e-10), perm=(0.01, 0.4, 0.6))
    assert b["verdict"] == "inconclusive" and b["primary"]["cmh_p_value"] == 1e-10 and b["statistic"] == 0.01
    assert verdict(odds=(1.3, 0.2), perm=(0.2, 0.001, 0.999))["verdict"] == "holds"
    assert verdict(odds=(2.5, 1e-10), perm=(-0.1, 0.99, 0.01))["verdict"] == "refuted"  # less than elsewhere
    s, a = study({PAPER_G: (group(), {})})
    a["influence"][PAPER_G]["disjoint"]["perm_test"]["statistic"] = "decisive_mh_log_odds_ratio"  # another rule's
    assert cl.claims({"bert": s}, {"bert": a})["b_el2n_enrichment"]["verdict"] == "inconclusive"
    a["influence"][PAPER_G]["disjoint"]["perm_test"]["statistic"] = ep.STATISTIC
    del a["influence"][PAPER_G]["disjoint"]["perm_test"]      # an analysis.json from before 2026-12-07
    assert cl.claims({"bert": s}, {"bert": a})["b_el2n_enrichment"]["verdict"] == "inconclusive"


def test_c_shows_the_measure_that_decided():
    s, a = study({PAPER_G: (group(), {"tokens": (1.2, 1e-6), "dale": (0.9, 1e-5)})})
    c = cl.claims({"bert": s}, {"bert": a})["c_longer_more_complex"]
    assert c["verdict"] == "refuted" and c["primary"]["measure_shown"] == "dale_chall" and c["statistic"] == 0.9
    assert c["primary"]["n_tokens_p_holm"] == pytest.approx(2e-6)   # both p-values reported


def _two_archs(names, bert_share=0.3, bilstm_share=0.1, **kw):
    bert = study({g: (group(share=bert_share, ci=(bert_share - 0.03, bert_share + 0.03)), {}) for g in names})
    bilstm = study({g: (group(share=bilstm_share, ci=(bilstm_share - 0.03, bilstm_share + 0.03), **kw), {})
                    for g in names})
    return {"bert": bert[0], "bilstm": bilstm[0]}, {"bert": bert[1], "bilstm": bilstm[1]}


def test_e_needs_three_matched_pairs():
    three = ["magnitude-ai-layer@0.20", "magnitude-ai-layer@0.50", "impact-ft-layer@0.50"]
    e = cl.claims(*_two_archs(three[:2]))["e_transformer_more_prone"]
    assert e["verdict"] == "inconclusive" and "2 matched" in e["note"] and "needs 3" in e["note"]
    e = cl.claims(*_two_archs(three))["e_transformer_more_prone"]
    assert e["verdict"] == "holds" and e["statistic"] == pytest.approx(0.2) and e["p_value"] < 0.05
    assert cl.claims(*_two_archs(three, 0.1, 0.3))["e_transformer_more_prone"]["verdict"] == "refuted"
    e = cl.claims(*_two_archs(three, n_models=10))["e_transformer_more_prone"]   # 5 vs 10 seeds: unmatched
    assert e["verdict"] == "inconclusive" and all("seeds per side" in w for w in e["unmatched"].values())
    s, a = _two_archs(three)
    a["bilstm"]["meta"]["n_train_examples"] = 1200                                # 1,000 vs 1,200 examples
    e = cl.claims(s, a)["e_transformer_more_prone"]
    assert e["verdict"] == "inconclusive" and "training examples" in e["unmatched"][three[0]]
    e = cl.claims(*_two_archs([g.replace("-layer", "") for g in three]))["e_transformer_more_prone"]
    assert e["verdict"] == "inconclusive" and set(e["unmatched"].values()) == {"not a paper method"}


def test_e_counts_the_floor_uncertainty():
    three = ["magnitude-ai-layer@0.20", "magnitude-ai-layer@0.50", "impact-ft-layer@0.50"]
    s, a = _two_archs(three, 0.30, 0.22)  # 0.08 apart: clear with the floors' own CIs ...
    assert cl.claims(s, a)["e_transformer_more_prone"]["verdict"] == "holds"
    for arch in s:
        s[arch]["noise_floor"] = {**FLOOR, "ci": [0.0, 0.2]}  # ... not with uncertain ones
    assert cl.claims(s, a)["e_transformer_more_prone"]["verdict"] == "inconclusive"


def test_dense_long_control_and_pruned_beats_dense_flag():
    ft = "magnitude-ft-layer@0.50"
    s, a = study({ft: (group(), {"overall": (-0.03, -0.04, -0.02)}), "dense-long": (group(share=0.1), {})})
    out = cl.claims({"bert": s}, {"bert": a})
    row = out["a_pie_accuracy_collapse"]["primary"]
    assert row["pruned_beats_dense"] is True and "no dense-long" not in json.dumps(out["dense-long"])
    assert "no dense-long group" in row["vs_dense_long"]["note"]   # no analysis against it yet
    assert "dense-long" not in out["paper_groups"] + out["our_groups"] and out["dense-long"]["bert"]["pie_share"] == 0.1
    a["vs_dense_long"] = {ft: {"pie_share": 0.12, "half_split": sections()["heldout"]["half_split"],
                               "overall_drop": boot(0.01, 0.0, 0.015)}}
    row = cl.claims({"bert": s}, {"bert": a})["a_pie_accuracy_collapse"]["primary"]
    assert row["pruned_beats_dense"] is True and row["vs_dense_long"]["pruned_beats_dense"] is False
    assert row["vs_dense_long"]["verdict"] == "holds" and row["vs_dense_long"]["pie_share"] == 0.12
    assert "dense-long" in cl.claims({"bert": s}, {"bert": a})["a_pie_accuracy_collapse"]["comparison"]


def test_a_result_recomputed_under_new_rules_keeps_its_original_verdicts():
    s, a = study({PAPER_G: (group(), {})})
    new = cl.claims({"bert": s}, {"bert": a})
    old = {"a_pie_accuracy_collapse": {"verdict": "inconclusive"}, "d_class_independent": {"verdict": "refuted"}}
    out = cr.supersede(new, old)
    assert out["superseded_rules_version"].startswith("before") and out["rules_version"] == cr.RULES_VERSION
    assert out["a_pie_accuracy_collapse"]["verdict"] == "holds"
    assert out["a_pie_accuracy_collapse"]["original"]["verdict"] == "inconclusive"
    assert out["d1_class_proportional"]["original"]["verdict"] == "refuted"
    assert cr.supersede(new, dict(new)) == new   # same rules: nothing to show
    # (b)'s rule changed in 2026-12-07.1: a result of 2026-12-06.1 shows its old verdict beside the new one.
    out = cr.supersede(new, {"rules_version": "2026-12-06.1", "b_el2n_enrichment": {"verdict": "refuted"}})
    assert cr.RULES_VERSION > "2026-12-06.1" and out["superseded_rules_version"] == "2026-12-06.1"
    assert out["b_el2n_enrichment"]["original"] == {"rules_version": "2026-12-06.1", "verdict": "refuted"}
    assert out["b_el2n_enrichment"]["verdict"] == "holds"


def test_claims_json_records_rules_and_a_hash_and_the_report_shows_both_tables(tmp_path):
    from pie_mlops.report.claims import claims_html
    from pie_mlops.compare.claims import claims_code_hash, write_claims

    params = {"dataset": "rt", "arch": ["bert"], "out": str(tmp_path / "{dataset}" / "{arch}"), "seed": 0}
    s, a = study({PAPER_G: (group(), {}), OS_G: (group(), {})})
    d = tmp_path / "rt" / "bert"
    d.mkdir(parents=True)
    (d / "summary.json").write_text(json.dumps(s))
    (d / "analysis.json").write_text(json.dumps({**a, "meta": {"arch": "bert"}}))
    path = tmp_path / "rt" / "claims.json"
    path.write_text(json.dumps({"a_pie_accuracy_collapse": {"verdict": "refuted"}}))  # a committed older result
    out = json.loads(write_claims(params).read_text())
    assert out["rules_version"] == cr.RULES_VERSION and out["claims_code_sha256"] == claims_code_hash()
    assert len(out["claims_code_sha256"]) == 64 and out["rules"]["overall_margin"] == 0.02
    assert out["a_pie_accuracy_collapse"]["original"]["verdict"] == "refuted"
    again = json.loads(write_claims(params).read_text())   # recomputed twice: still the first verdict
    assert again["a_pie_accuracy_collapse"]["original"]["verdict"] == "refuted"
    html = claims_html(out)
    assert html.index("(a) Accuracy collapses") < html.index("Our methods") and f"bert/{OS_G}" in html
    assert "under rules" in html and "decided by bert/" + PAPER_G in html
