"""The paper's claims (Tropeano et al. 2025), tested on our comparisons (docs/claims.md). Pure:
each architecture's summary.json and analysis.json dicts in, the claims.json dict out.

Every claim is a hypothesis with one statistic, one test and a margin set before the data
(`compare.claims`). A per-group row holds the statistic, the interval or p-value that decides
it and its verdict; the claim's verdict is its primary group's (claim_rules: the groups share
their dense models and test set, so they are not counted as replications). Rows of our own
methods (os, structured, global threshold) are computed the same way and shown apart.
"""

from __future__ import annotations

import numpy as np

from pie_mlops.analysis.claim_rules import (DENSE_LONG, RULES_VERSION, eligibility, groups_of, method_kind, parse,
                                            primary_order)
from pie_mlops.analysis.enrichment_perm import STATISTIC
from pie_mlops.analysis.stats import holm

TRANSFORMER, RNN = "bert", "bilstm"
RULES = {"alpha": 0.05, "overall_margin": 0.02, "class_v_margin": 0.1, "primary": []}  # config/schema.py holds the defaults
PAPER = {
    "a_pie_accuracy_collapse": "On PIEs, pruned accuracy collapses while accuracy on all examples barely moves.",
    "b_el2n_enrichment": "PIEs are enriched among the high-EL2N (hard, influential) training examples.",
    "c_longer_more_complex": "PIEs are longer and more complex than other examples.",
    "d1_class_proportional": "PIEs occur across classes roughly in proportion to the classes' frequency.",
    "d2_damage_every_class": "The damage on PIEs exists in rare and frequent classes alike.",
    "e_transformer_more_prone": "The transformer (BERT) is more prone to PIEs than the BiLSTM.",
}


def _verdict(ok: bool, against: bool) -> str:
    return "refuted" if against else "holds" if ok else "inconclusive"


def row_a(an: dict, g: str, rules: dict) -> dict | None:
    h = (an.get("heldout") or {}).get(g) or {}
    hs, od = h.get("half_split") or {}, h.get("overall_drop") or {}
    did = hs.get("did") or {}
    if did.get("ci", [None])[0] is None or od.get("ci", [None])[0] is None:
        return None
    m, (lo, hi), (olo, ohi) = rules["overall_margin"], did["ci"], od["ci"]
    barely = -m < olo and ohi < m
    moves = olo > m or ohi < -m
    shown = {"statistic": did["value"], "ci": did["ci"], "p_value": did.get("p_value"), "decided_on": "both conjuncts"
             if lo > 0 and barely else "drop on PIEs minus non-PIEs" if hi < 0 or not moves else None}
    if shown["decided_on"] is None:  # refuted by the conjunct alone: show the figure that decided
        shown = {"statistic": od["value"], "ci": od["ci"], "p_value": od.get("p_value"),
                 "statistic_name": f"overall accuracy drop (margin +-{m:g})", "decided_on": "overall accuracy moves"}
    return {"verdict": _verdict(lo > 0 and barely, hi < 0 or moves), **shown, "did": did["value"], "did_ci": did["ci"],
            "drop_pie": hs["drop_pie"]["value"],
            "drop_nonpie": hs["drop_nonpie"]["value"], "overall_drop": od["value"], "overall_drop_ci": od["ci"],
            "overall_within_margin": barely, "seeds_per_half": hs.get("seeds_per_half"),
            "pruned_beats_dense": od["value"] < 0}


def row_b(an: dict, g: str, rules: dict) -> dict | None:
    d = ((an.get("influence") or {}).get(g) or {}).get("disjoint") or {}
    t = d.get("perm_test") or {}
    if t.get("p_value") is None or t.get("statistic") != STATISTIC:
        return None  # an analysis.json from an older rule: inconclusive until compare is re-run
    # Against seed noise at the same seeds: the excess PIE weight (observed minus its mean over
    # relabelings) of the top-10% EL2N examples against the rest's. The CMH test against OR = 1
    # is shown, never decides: seed noise's PIEs alone can be high-EL2N.
    return {"verdict": _verdict(t["p_value"] < rules["alpha"], t["p_below"] < rules["alpha"]),
            "statistic": t["difference"], "p_value": t["p_value"], "p_below": t["p_below"], "z": t["z"],
            "excess_top": t["excess_top"], "excess_rest": t["excess_rest"], "weight_top": t["weight_top"],
            "weight_rest": t["weight_rest"], "perm_method": t.get("method"), "n_perm": t.get("n_perm"),
            "excess_strata": t.get("strata"), "mh_odds_ratio": d.get("odds_ratio"), "cmh_p_value": d.get("p_value"),
            "cmh_chi2": d.get("statistic"), "strata": d.get("strata"), "el2n_seeds": d.get("el2n_seeds")}


def row_c(an: dict, g: str, rules: dict) -> dict | None:
    t = (an.get("complexity") or {}).get(g) or {}
    ms = ("n_tokens", "dale_chall")
    if not all(m in t and t[m].get("p_value") is not None for m in ms):
        return None
    adj = holm([t[m]["p_value"] for m in ms])
    sig = {m: (int(np.sign((t[m]["ratio"] or 1.0) - 1.0)) if p < rules["alpha"] else 0) for m, p in zip(ms, adj)}
    against = [m for m in ms if sig[m] == -1]
    # Shown: the measure that decided (the one against, else the weaker of the two).
    shown = against[0] if against else max(ms, key=lambda m: adj[ms.index(m)])
    return {"verdict": _verdict(all(v == 1 for v in sig.values()), bool(against)), "measure_shown": shown,
            "statistic": t[shown]["ratio"], "p_value": float(adj[ms.index(shown)]),
            **{f"{m}_ratio": t[m]["ratio"] for m in ms}, **{f"{m}_p_holm": float(p) for m, p in zip(ms, adj)}}


def row_d1(an: dict, g: str, rules: dict) -> dict | None:
    v = ((an.get("classes") or {}).get(g) or {}).get("cramers_v") or {}
    if v.get("value") is None:
        return None
    lo, hi = v["ci"]
    return {"verdict": _verdict(hi < rules["class_v_margin"], lo > rules["class_v_margin"]),
            "statistic": v["value"], "ci": v["ci"], "margin": rules["class_v_margin"]}


def row_d2(an: dict, g: str, rules: dict) -> dict | None:
    per = (((an.get("heldout") or {}).get(g) or {}).get("half_split") or {}).get("per_class") or []
    per = [c for c in per if c["n"] > 0]
    if len(per) < 2:
        return None
    k = len(per)
    # Holds when every class's drop CI is above 0 (an intersection: no correction); refuted when
    # some class is significantly better off after pruning (Bonferroni over the classes).
    ok = all(c["ci"][0] is not None and c["ci"][0] > 0 for c in per)
    against = any(c["value"] is not None and c["value"] < 0 and c["p_value"] * k < rules["alpha"] for c in per)
    rarest = min(per, key=lambda c: c["n"])
    worst = min((c for c in per if c["value"] is not None), key=lambda c: c["ci"][0], default=rarest)
    return {"verdict": _verdict(ok, against), "statistic": worst["value"], "ci": worst["ci"], "class": worst["class"],
            "rarest_class": rarest["class"], "rarest_drop": rarest["value"], "rarest_ci": rarest["ci"],
            "per_class": per}


ROWS = {"a_pie_accuracy_collapse": (row_a, "held-out per-model accuracy drop on PIEs minus on non-PIEs "
                                           "(PIEs from the other seed half, mean over splits)"),
        "b_el2n_enrichment": (row_b, "excess decisive PIE weight (observed minus its mean over relabelings of the "
                                     "PIE-defining models: beyond seed noise), top-10% EL2N minus the rest (EL2N "
                                     "from disjoint dense seeds), stratified by the EL2N seeds' correctness; "
                                     "Welch z, one-sided; CMH shown"),
        "c_longer_more_complex": (row_c, "PIE / non-PIE ratio of word tokens and of Dale-Chall score; "
                                         "Mann-Whitney U, Holm over the two"),
        "d1_class_proportional": (row_d1, "Cramer's V of PIE x class, example-bootstrap 95% CI vs the margin"),
        "d2_damage_every_class": (row_d2, "held-out accuracy drop on each class's PIEs (lowest CI shown), "
                                          "example-bootstrap 95% CIs")}


NAMES = {"a_pie_accuracy_collapse": "held-out drop on PIEs - drop on non-PIEs",
         "b_el2n_enrichment": "excess PIE weight, top-10% EL2N - rest", "c_longer_more_complex": "PIE / non-PIE ratio",
         "d1_class_proportional": "Cramer's V", "d2_damage_every_class": "lowest class drop on PIEs",
         "e_transformer_more_prone": "mean excess share, bert - bilstm"}


def _rows(key: str, names: list[str], analyses: dict, rules: dict, long_: dict) -> list[dict]:
    fn, _ = ROWS[key]
    out = []
    for name in names:
        arch, g = name.split("/", 1)
        r = fn(analyses[arch], g, rules)
        if r is None:
            continue
        r = {"group": name, "statistic_name": NAMES[key], **r}
        if key == "a_pie_accuracy_collapse" and (parse(g) or {}).get("schedule") in ("ft", "wr"):
            # The training-length control: the same test with dense-long (4E epochs) as reference.
            v = long_.get(name)
            r["vs_dense_long"] = ({"pie_share": v.get("pie_share"), **(row_a({"heldout": {g: v}}, g, rules) or {})}
                                  if v else {"note": f"no {DENSE_LONG} group (train.dense_long_epochs)"})
        out.append(r)
    return out


def claim(key: str, paper: list[str], analyses: dict, rules: dict, excluded: dict, long_: dict) -> dict:
    rows = _rows(key, primary_order(paper, rules.get("primary")), analyses, rules, long_)
    entry = {"claim": key, "paper": PAPER[key], "measure": ROWS[key][1], "statistic_name": NAMES[key],
             "across_groups": "primary",
             "comparison": "dense (the paper's); ft/wr rows also against dense-long (`vs_dense_long`)"
             if key == "a_pie_accuracy_collapse" else "dense (the paper's)",
             "groups": [r["group"] for r in rows], "excluded": excluded}
    if not rows:
        return {**entry, "verdict": "inconclusive", "statistic": None, "ci": None, "p_value": None,
                "decided_by": None, "secondary": [],
                "note": "no eligible paper-method group with the data this claim needs"}
    first = rows[0]
    return {**entry, "statistic_name": first["statistic_name"], "verdict": first["verdict"],
            "statistic": first["statistic"], "ci": first.get("ci"),
            "p_value": first.get("p_value"), "decided_by": first["group"], "primary": first,
            "secondary": rows[1:], "note": f"primary group {first['group']} (pre-set order, docs/claims.md); "
                                           f"{len(rows) - 1} secondary group(s) reported, not counted"}


def _se(ci) -> float | None:
    return None if not ci or ci[0] is None else (ci[1] - ci[0]) / (2 * 1.959964)


def claim_e(summaries: dict, analyses: dict, elig: dict, rules: dict) -> dict:
    """>= 3 matched (method, sparsity) pairs of paper groups, equal training data and seeds per
    side in both architectures; excess shares (share - floor) compared with the uncertainty of
    the share and of the floor (normal approximation from their 95% intervals). Pairs share
    their dense models within an architecture, so the mean's SE is the mean of the pairs' SEs
    (perfect correlation: conservative)."""
    key = "e_transformer_more_prone"
    base = {"claim": key, "paper": PAPER[key], "measure": "mean over matched pairs of (BERT share - BERT floor) - "
            "(BiLSTM share - BiLSTM floor), z-test with share and floor uncertainty",
            "statistic_name": NAMES[key], "across_groups": "all matched "
            "pairs, one test on their mean (SE as if fully correlated)", "comparison": "dense (the paper's)",
            "statistic": None, "p_value": None, "ci": None, "groups": []}
    if TRANSFORMER not in summaries or RNN not in summaries:
        return {**base, "verdict": "inconclusive", "note": f"needs both {TRANSFORMER} and {RNN} comparisons"}
    (ts, rs), (ta, ra) = (summaries[TRANSFORMER], summaries[RNN]), (analyses[TRANSFORMER], analyses[RNN])
    tf, rf = (ts.get("noise_floor") or {}), (rs.get("noise_floor") or {})
    unmatched, rows = {}, []
    n_t, n_r = (ta.get("meta") or {}).get("n_train_examples"), (ra.get("meta") or {}).get("n_train_examples")
    for g in sorted(set(groups_of(ts)) & set(groups_of(rs))):
        t, r = groups_of(ts)[g], groups_of(rs)[g]
        why = ("not a paper method" if method_kind(g) != "paper" else "collapsed" if t.get("collapsed") or
               r.get("collapsed") else "above the floor in neither" if g not in elig[TRANSFORMER] and g not in
               elig[RNN] else f"training examples differ or unknown ({n_t} vs {n_r})" if n_t is None or n_t != n_r
               else f"seeds per side differ ({t.get('n_models')} vs {r.get('n_models')})"
               if t.get("n_models") != r.get("n_models") or t.get("n_dense_models") != r.get("n_dense_models")
               else None)
        ses = [_se(t.get("pie_share_ci")), _se(tf.get("ci")), _se(r.get("pie_share_ci")), _se(rf.get("ci"))]
        if why is None and (None in ses or tf.get("share") is None or rf.get("share") is None):
            why = "no interval for a share or a floor"
        if why:
            unmatched[g] = why
            continue
        diff = (t["pie_share"] - tf["share"]) - (r["pie_share"] - rf["share"])
        rows.append({"group": g, "diff": diff, "se": float(np.sqrt(sum(s * s for s in ses))),
                     f"{TRANSFORMER}_excess": t["pie_share"] - tf["share"], f"{RNN}_excess": r["pie_share"] - rf["share"]})
    base.update(groups=[r["group"] for r in rows], details=rows, unmatched=unmatched)
    if len(rows) < 3:
        return {**base, "verdict": "inconclusive", "note": f"{len(rows)} matched (method, sparsity) pair(s); the rule "
                f"needs 3 with equal training data and seeds per side in both architectures"}
    from scipy.stats import norm

    mean, se = float(np.mean([r["diff"] for r in rows])), float(np.mean([r["se"] for r in rows]))
    p = float(2 * norm.sf(abs(mean) / se)) if se > 0 else (0.0 if mean else 1.0)
    sig = p < rules["alpha"]
    return {**base, "verdict": _verdict(sig and mean > 0, sig and mean < 0), "statistic": mean, "p_value": p,
            "ci": [mean - 1.959964 * se, mean + 1.959964 * se], "note": f"{len(rows)} matched pairs"}


def claims(summaries: dict[str, dict], analyses: dict[str, dict], rules: dict | None = None) -> dict:
    """claims.json: the rules, `seeds_per_group`, the paper claims (decided by paper-method
    groups only) and `our_methods` (the same rows for our groups), keyed by architecture."""
    rules = {**RULES, **(rules or {})}
    paper, ours, excluded, seeds, elig, long_, ours_out, control = [], [], {}, {}, {}, {}, {}, {}
    for arch, summary in sorted(summaries.items()):
        elig[arch], ex = eligibility(summary)
        for g in elig[arch]:
            {"paper": paper, "ours": ours}.get(method_kind(g), []).append(f"{arch}/{g}")
        excluded.update({f"{arch}/{g}": why for g, why in ex.items() if method_kind(g) == "paper"})
        ours_out.update({f"{arch}/{g}": why for g, why in ex.items() if method_kind(g) == "ours"})
        if DENSE_LONG in groups_of(summary):
            dl = groups_of(summary)[DENSE_LONG]
            control[arch] = {k: dl.get(k) for k in ("pie_share", "pie_share_ci", "above_floor", "dense_acc_all",
                                                    "pruned_acc_all", "n_models")}
        long_.update({f"{arch}/{g}": v for g, v in (analyses[arch].get("vs_dense_long") or {}).items()})
        pruned = [s.get("n_models") for g, s in groups_of(summary).items() if s.get("n_models") and g != DENSE_LONG]
        floor = summary.get("noise_floor") or {}
        seeds[arch] = {"dense": floor.get("n_dense_models"), "pruned": min(pruned) if pruned else None,
                       "floor_per_side": floor.get("seeds_per_side")}
    out = {"rules_version": RULES_VERSION, "rules": rules, "seeds_per_group": seeds, "alpha": rules["alpha"],
           "across_groups": "primary group per claim (pre-set order), others secondary; (e): one test over all "
                            "matched pairs",
           "paper_groups": paper, "our_groups": ours}
    for key in ROWS:
        out[key] = claim(key, paper, analyses, rules, excluded, long_)
    out["e_transformer_more_prone"] = claim_e(summaries, analyses, elig, rules)
    out["our_methods"] = {key: _rows(key, primary_order(ours), analyses, rules, long_) for key in ROWS}
    out["our_methods_excluded"] = ours_out
    # dense-long against dense: PIEs from training length alone (pruned_acc_all: dense-long's).
    out[DENSE_LONG] = control
    return out
