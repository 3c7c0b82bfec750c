"""The paper's five claims (Tropeano et al. 2025), tested on our comparisons. Pure: the
summary.json and analysis.json dicts of each architecture in, the claims.json dict out.

Rules every claim follows (docs/claims.md):
- A group is *eligible* when it is not collapsed and its PIE share's bootstrap CI lies wholly
  above the dense-vs-dense noise floor's CI (`stats.clears_floor`). Only eligible groups are
  counted; the others are listed under `excluded` with the reason, and never support `holds`.
- No eligible group (or too few for the test): `inconclusive`.
- Per-group tests are Holm-corrected across the groups (and measures) of the claim. The claim
  `holds` when most eligible groups are significant in the paper's direction and none against;
  `refuted` when most are significant against and none for; otherwise `inconclusive`.
- Claims about a mean over groups use a bootstrap CI over the groups: `holds` when it lies
  above 0, `refuted` when below, `inconclusive` when it straddles 0 or has fewer than 2 groups.
"""

from __future__ import annotations

import numpy as np
from scipy import stats as _st

from pie_mlops.analysis.stats import bootstrap_ci, clears_floor, holm

ALPHA = 0.05
TRANSFORMER, RNN = "bert", "bilstm"
PAPER = {
    "a_pie_accuracy_collapse": "On PIEs, pruned accuracy collapses while accuracy on all examples barely moves.",
    "b_el2n_enrichment": "PIEs are enriched among the high-EL2N (hard, influential) training examples.",
    "c_longer_more_complex": "PIEs are longer and more complex than other examples.",
    "d_class_independent": "PIEs arise whatever the class: no class holds them disproportionately.",
    "e_transformer_more_prone": "The transformer (BERT) is more prone to PIEs than the BiLSTM.",
}


def groups_of(summary: dict) -> dict:
    """The pruned groups of a summary.json (everything but its `noise_floor`)."""
    return {g: s for g, s in summary.items() if g != "noise_floor" and isinstance(s, dict)}


def eligibility(summary: dict) -> tuple[list[str], dict[str, str]]:
    """(eligible groups, {excluded group: why}) of one architecture's summary."""
    floor = summary.get("noise_floor")
    ok, excluded = [], {}
    for g, s in sorted(groups_of(summary).items()):
        if (floor or {}).get("dense_collapsed"):
            excluded[g] = "the dense models themselves predict one class"
        elif s.get("collapsed"):
            excluded[g] = f"collapsed ({s.get('majority_pred_share', float('nan')):.2f} one class)"
        elif not clears_floor(s.get("pie_share_ci"), floor):
            excluded[g] = "PIE share CI not above the noise floor"
        else:
            ok.append(g)
    return ok, excluded


def _entry(key: str, verdict: str, statistic, name: str, groups: list, note: str, excluded: dict, **extra) -> dict:
    return {"claim": key, "paper": PAPER[key], "verdict": verdict, "statistic": statistic, "statistic_name": name,
            "groups": groups, "excluded": excluded, "note": note, **extra}


def _nothing(key: str, excluded: dict, why: str = "no eligible group (all collapsed or under the noise floor)") -> dict:
    return _entry(key, "inconclusive", None, "", [], why, excluded, p_value=None)


def signed(direction: int, p_holm: float | None) -> int:
    """A group's test result: its direction (+1 the paper's, -1 against) when significant, else 0."""
    return direction if p_holm is not None and np.isfinite(p_holm) and p_holm < ALPHA else 0


def vote(results: list[int]) -> str:
    """Majority rule over the groups' `signed` results."""
    support, against = results.count(1), results.count(-1)
    if support > len(results) / 2 and not against:
        return "holds"
    if against > len(results) / 2 and not support:
        return "refuted"
    return "inconclusive"


def interval_verdict(ci: list) -> str:
    lo, hi = ci
    if lo is None or lo == hi:  # no interval, or one group (a point, not an interval)
        return "inconclusive"
    return "holds" if lo > 0 else "refuted" if hi < 0 else "inconclusive"


def _median(values) -> float | None:
    v = [x for x in values if x is not None and np.isfinite(x)]
    return float(np.median(v)) if v else None


def _f(v) -> str:
    return "n/a" if v is None else f"{v:.2f}"


def claim_a(summaries: dict, elig: dict, excluded: dict, seed: int = 0) -> dict:
    key, rows = "a_pie_accuracy_collapse", []
    for arch, groups in elig.items():
        for g in groups:
            s = groups_of(summaries[arch])[g]
            vals = [s.get(k) for k in ("dense_modal_acc_pie", "pruned_modal_acc_pie", "dense_modal_acc_all",
                                       "pruned_modal_acc_all")]
            if None not in vals:
                rows.append({"group": f"{arch}/{g}", "drop_pie": vals[0] - vals[1], "drop_all": vals[2] - vals[3]})
    if not rows:
        return _nothing(key, excluded)
    diffs = [r["drop_pie"] - r["drop_all"] for r in rows]
    ci = bootstrap_ci(diffs, seed=seed)
    drop_pie, drop_all = float(np.mean([r["drop_pie"] for r in rows])), float(np.mean([r["drop_all"] for r in rows]))
    note = (f"modal-label accuracy drops {drop_pie:.2f} on PIEs vs {drop_all:.2f} on all examples, "
            f"mean over {len(rows)} eligible group(s)" + ("; one group: no interval" if len(rows) < 2 else ""))
    return _entry(key, interval_verdict(ci), float(np.mean(diffs)), "mean(drop on PIEs - drop on all)",
                  [r["group"] for r in rows], note, excluded, ci=ci, drop_pie=drop_pie, drop_all=drop_all,
                  details=rows)


def claim_b(analyses: dict, elig: dict, excluded: dict) -> dict:
    key, rows = "b_el2n_enrichment", []
    for arch, groups in elig.items():
        inf = analyses[arch].get("influence", {})
        for g in groups:
            t = inf.get(g, {}).get("top10")
            if not t or t.get("base_rate") is None:
                continue
            n, k = int(inf[g]["n_train"]), int(t["n"])
            hits, total = int(round(t["pie_share"] * k)), int(round(t["base_rate"] * n))
            # Fisher's exact test of the 2x2 table (top-10% or not) x (PIE or not), two-sided.
            p = float(_st.fisher_exact([[hits, k - hits], [total - hits, n - k - total + hits]])[1])
            e = t.get("enrichment")
            rows.append({"group": f"{arch}/{g}", "enrichment": e, "top10_pie_share": t["pie_share"],
                         "base_rate": t["base_rate"], "p_value": p,
                         "direction": 0 if e is None else int(np.sign(e - 1.0))})
    if not rows:
        return _nothing(key, excluded, "no eligible group with EL2N (train-split) predictions")
    for r, p in zip(rows, holm([r["p_value"] for r in rows])):
        r["p_holm"] = float(p)
    stat = _median([r["enrichment"] for r in rows])
    note = (f"top-10% EL2N PIE share over base rate: median {_f(stat)}x over {len(rows)} group(s), "
            f"Fisher's exact test, Holm over groups")
    return _entry(key, vote([signed(r["direction"], r["p_holm"]) for r in rows]), stat,
                  "median enrichment (top-10% PIE share / base rate)", [r["group"] for r in rows], note, excluded,
                  p_value=_median([r["p_holm"] for r in rows]), details=rows)


def claim_c(analyses: dict, elig: dict, excluded: dict) -> dict:
    key, rows = "c_longer_more_complex", []
    # Longer: word tokens; more complex: Dale-Chall (higher = harder to read).
    measures = ("n_tokens", "dale_chall")
    for arch, groups in elig.items():
        cx = analyses[arch].get("complexity", {})
        for g in groups:
            t = cx.get(g, {})
            if all(m in t and t[m].get("p_value") is not None for m in measures):
                rows.append({"group": f"{arch}/{g}", **{f"{m}_ratio": t[m]["ratio"] for m in measures},
                             **{f"{m}_p": t[m]["p_value"] for m in measures}})
    if not rows:
        return _nothing(key, excluded, "no eligible group with PIEs and non-PIEs to compare")
    adj = holm([r[f"{m}_p"] for r in rows for m in measures]).reshape(len(rows), len(measures))
    results = []
    for r, a in zip(rows, adj):
        signs = [signed(int(np.sign((r[f"{m}_ratio"] or 1.0) - 1.0)), p) for m, p in zip(measures, a)]
        r.update({f"{m}_p_holm": float(p) for m, p in zip(measures, a)})
        # Supports: longer AND harder to read; against: significantly shorter or easier.
        r["result"] = 1 if signs == [1, 1] else -1 if -1 in signs else 0
        results.append(r["result"])
    stat = _median([r["n_tokens_ratio"] for r in rows])
    note = (f"PIE/non-PIE token-length ratio: median {_f(stat)}, Dale-Chall ratio median "
            f"{_f(_median([r['dale_chall_ratio'] for r in rows]))}; Mann-Whitney, Holm over groups and measures")
    return _entry(key, vote(results), stat,
                  "median token-length ratio (PIE / non-PIE)", [r["group"] for r in rows], note, excluded,
                  p_value=_median([r["n_tokens_p_holm"] for r in rows]), details=rows)


def claim_d(analyses: dict, elig: dict, excluded: dict) -> dict:
    key, rows = "d_class_independent", []
    for arch, groups in elig.items():
        for g in groups:
            c = analyses[arch].get("classes", {}).get(g, {})
            if c.get("p_value") is None:
                continue  # multi-label: no chi-square (classes are not exclusive)
            drop = [None if d is None or p is None else d - p
                    for d, p in zip(c.get("dense_acc_per_class", []), c.get("pruned_acc_per_class", []))]
            rows.append({"group": f"{arch}/{g}", "chi2": c["chi2"], "p_value": c["p_value"], "acc_drop_per_class": drop})
    if not rows:
        return _nothing(key, excluded, "no eligible single-label group with a chi-square test")
    adj = holm([r["p_value"] for r in rows])
    for r, p in zip(rows, adj):
        r["p_holm"] = float(p)
    dependent = [r for r in rows if r["p_holm"] < ALPHA]
    # The claim is the null (class independence): no group rejecting it supports it, but only as
    # absence of evidence; most groups rejecting it refutes it.
    verdict = "holds" if not dependent else "refuted" if len(dependent) > len(rows) / 2 else "inconclusive"
    drops = np.array([[np.nan if v is None else v for v in r["acc_drop_per_class"]] for r in rows], float)
    per_class = [None if np.isnan(c).all() else float(np.nanmean(c)) for c in drops.T] if drops.size else []
    note = (f"chi-square of PIE vs non-PIE class counts: {len(dependent)} of {len(rows)} group(s) class-dependent "
            f"(Holm p < {ALPHA}); mean accuracy drop per class {[round(v, 3) if v is not None else None for v in per_class]}")
    return _entry(key, verdict, float(np.median([r["chi2"] for r in rows])), "median chi-square",
                  [r["group"] for r in rows], note, excluded, p_value=_median([r["p_holm"] for r in rows]),
                  acc_drop_per_class=per_class, details=rows)


def _excess(summary: dict, g: str) -> tuple[float, list]:
    """A group's PIE share and its CI less its architecture's noise floor: what seed noise does
    not explain."""
    s, floor = groups_of(summary)[g], (summary.get("noise_floor") or {}).get("share") or 0.0
    lo, hi = s.get("pie_share_ci") or [None, None]
    return s["pie_share"] - floor, [None if lo is None else lo - floor, None if hi is None else hi - floor]


def _degenerate(summary: dict, g: str) -> bool:
    return bool((summary.get("noise_floor") or {}).get("dense_collapsed") or groups_of(summary)[g].get("collapsed"))


def claim_e(summaries: dict, elig: dict, excluded: dict, seed: int = 0) -> dict:
    """Pairs the architectures' groups of one (method, sparsity). A pair counts when neither is
    collapsed and at least one clears its floor: a robust BiLSTM beside a PIE-prone transformer
    is the paper's finding, not missing evidence. A pair is significant when the two excess-share
    CIs do not overlap (conservative: two 95% CIs apart is p < 0.01)."""
    key = "e_transformer_more_prone"
    if TRANSFORMER not in summaries or RNN not in summaries:
        return _nothing(key, excluded, f"needs both {TRANSFORMER} and {RNN} comparisons of this dataset")
    t_sum, r_sum = summaries[TRANSFORMER], summaries[RNN]
    rows = []
    for g in sorted(set(groups_of(t_sum)) & set(groups_of(r_sum))):
        if _degenerate(t_sum, g) or _degenerate(r_sum, g) or (g not in elig[TRANSFORMER] and g not in elig[RNN]):
            continue
        (t, t_ci), (r, r_ci) = _excess(t_sum, g), _excess(r_sum, g)
        apart = None not in (*t_ci, *r_ci)
        direction = 1 if apart and t_ci[0] > r_ci[1] else -1 if apart and r_ci[0] > t_ci[1] else 0
        rows.append({"group": g, f"{TRANSFORMER}_share": groups_of(t_sum)[g]["pie_share"],
                     f"{RNN}_share": groups_of(r_sum)[g]["pie_share"], f"{TRANSFORMER}_excess_ci": t_ci,
                     f"{RNN}_excess_ci": r_ci, "diff": t - r, "direction": direction,
                     "seeds": [groups_of(t_sum)[g].get("n_models"), groups_of(r_sum)[g].get("n_models")]})
    if not rows:
        return _nothing(key, excluded, "no (method, sparsity) of both architectures, neither collapsed, "
                                       "with at least one above its noise floor")
    diffs = [r["diff"] for r in rows]
    ci = bootstrap_ci(diffs, seed=seed) if len(rows) > 1 else [None, None]
    support = sum(r["direction"] == 1 for r in rows)
    note = (f"PIE share over each arch's noise floor, {TRANSFORMER} minus {RNN}: mean {np.mean(diffs):+.3f} over "
            f"{len(rows)} matched (method, sparsity) pair(s); {support} with the {TRANSFORMER}'s interval wholly "
            f"above the {RNN}'s, {sum(r['direction'] == -1 for r in rows)} wholly below")
    return _entry(key, vote([r["direction"] for r in rows]), float(np.mean(diffs)),
                  f"mean excess PIE share, {TRANSFORMER} - {RNN}", [r["group"] for r in rows], note, excluded,
                  ci=ci, details=rows)


def claims(summaries: dict[str, dict], analyses: dict[str, dict], seed: int = 0) -> dict:
    """claims.json: `seeds_per_group` and the five claims, from each architecture's
    summary.json and analysis.json dicts (keyed by architecture)."""
    elig, excluded, seeds = {}, {}, {}
    for arch, summary in sorted(summaries.items()):
        elig[arch], ex = eligibility(summary)
        excluded.update({f"{arch}/{g}": why for g, why in ex.items()})
        pruned = [s.get("n_models") for s in groups_of(summary).values() if s.get("n_models")]
        floor = summary.get("noise_floor") or {}
        seeds[arch] = {"dense": floor.get("n_dense_models"), "pruned": min(pruned) if pruned else None,
                       "floor_per_side": floor.get("seeds_per_side")}
    out = {"seeds_per_group": seeds, "alpha": ALPHA,
           "a_pie_accuracy_collapse": claim_a(summaries, elig, excluded, seed),
           "b_el2n_enrichment": claim_b(analyses, elig, excluded),
           "c_longer_more_complex": claim_c(analyses, elig, excluded),
           "d_class_independent": claim_d(analyses, elig, excluded),
           "e_transformer_more_prone": claim_e(summaries, elig, excluded, seed)}
    return out
