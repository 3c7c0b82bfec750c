"""Calibration of the claims' verdicts: simulated studies with a known truth per claim, run
through the code `pie-mlops compare` runs (pies.compare, group_stats.add_statistics,
analysis.run.analyse, analysis.claims.claims with the schema's rules), scored verdict by
verdict (docs/calibration.md, "Claim verdicts").

A study: one binary dataset (class 1 rare, 30%) with `--n` test and `--n` train examples and
their texts; two architectures (bert, bilstm), each with 20 dense seeds (test, train and the
`train@epoch1` snapshot) and three paper-method groups (`magnitude-ai-layer@0.5` first in the
pre-set primary order, `magnitude-ai-layer@0.2`, `random-ai-layer@0.5`) of 20 seeds each,
every model drawn independently (ai groups carry the dense seeds: the paired floor test, the
paired half-splits). Each example has a chance q_e that a model gets it right (the floor
calibration's difficulty model); pruning changes the chances of a *planted* set only:
- `damage`: dense right (q ~ Beta(40, 1)), pruned wrong (1 - q): PIEs that cost accuracy;
- `neutral`: half of the planted set damaged, half repaired (dense wrong, pruned right):
  PIEs exist, but the pruned models are no worse on them.
The planted set is drawn from every class (`proportional`), the rare class only (`rare`) or
the frequent class only (`frequent`); its texts are ordinary or longer and harder (`complex`:
1.5x the words, a quarter of them outside the Dale-Chall list); its train-split counterpart is
drawn at random (`random`) or among the examples the early snapshot gets wrong (`early`:
EL2N-aligned). The snapshot's chances are independent of the final ones (`independent`) or
equal to them (`confounded`: EL2N tracks final difficulty, and so do the seed-noise PIEs).

Last stdout line: one JSON object (docs/design.md §6).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from calibration import difficulty, draw_models, logits_of  # noqa: E402

from pie_mlops.analysis.claims import claims  # noqa: E402
from pie_mlops.analysis.group_stats import StatOptions, add_statistics  # noqa: E402
from pie_mlops.analysis.run import analyse, clean  # noqa: E402
from pie_mlops.compare.pies import GroupStack, Stacked, compare  # noqa: E402
from pie_mlops.config.schema import defaults  # noqa: E402
from pie_mlops.compare.claims import rules_of  # noqa: E402

CLAIMS = ("a_pie_accuracy_collapse", "b_el2n_enrichment", "c_longer_more_complex", "d1_class_proportional",
          "d2_damage_every_class", "e_transformer_more_prone")
GROUPS = ("magnitude-ai-layer@0.5", "magnitude-ai-layer@0.2", "random-ai-layer@0.5")
# Scenario: planted share (bert, bilstm) of the test examples (of the train examples too, unless
# `train_share` says otherwise), and the knobs of the module docstring.
# truth per claim: "present" (the claim is true: `holds` is power), "absent" (false: `holds` is a
# false positive), "confounded" (b absent, but EL2N and seed-noise PIEs share a cause), None (not scored).
P, A = "present", "absent"
RULES = rules_of(defaults("compare"))  # what compare decides by: compare.claims and compare.alpha
SCENARIOS = {
    "null": {"share": (0.02, 0.02), "damage": "neutral", "classes": "rare", "texts": "plain", "train": "random",
             "snapshot": "independent",
             "truth": dict.fromkeys(CLAIMS, A)},
    "planted": {"share": (0.01, 0.0), "train_share": 0.05, "damage": "damage", "classes": "proportional",
                "texts": "complex", "train": "early", "snapshot": "independent",
                "truth": dict.fromkeys(CLAIMS, P)},
    "large": {"share": (0.05, 0.01), "damage": "damage", "classes": "proportional", "texts": "complex",
              "train": "random", "snapshot": "independent",
              "truth": dict(zip(CLAIMS, (A, A, P, P, P, P)))},
    "rare_spared": {"share": (0.01, 0.01), "damage": "damage", "classes": "frequent", "texts": "plain",
                    "train": "random", "snapshot": "confounded",
                    "truth": dict(zip(CLAIMS, (P, "confounded", A, None, A, A)))},
}
EASY = ("the a good bad movie film was is fun and but not very it this story old new man day time play big "
        "little long funny sad best end love friend find see make").split()
HARD = ("extraordinarily incomprehensible bureaucratic juxtaposition ostentatious phenomenological "
        "idiosyncratic meticulous quintessential paradigmatic ambivalent melodramatic").split()


def texts_of(n: int, complex_: np.ndarray, rng) -> list[str]:
    """One sentence per example: 6-30 words, 5% of them hard; `complex_` ones 1.5x longer, 25% hard."""
    out = []
    for c in complex_:
        k = int(rng.integers(6, 31) * (1.5 if c else 1.0))
        hard = rng.random(k) < (0.25 if c else 0.05)
        out.append(" ".join(np.where(hard, rng.choice(HARD, k), rng.choice(EASY, k))) + ".")
    return out


def chances(q: np.ndarray, planted: np.ndarray, damage: str, rng) -> tuple[np.ndarray, np.ndarray]:
    """(dense, pruned) chance of being right per example: the planted ones changed (docstring)."""
    qd, qp = q.copy(), q.copy()
    easy = rng.beta(40, 1, len(q))
    repair = planted & (rng.random(len(q)) < 0.5) if damage == "neutral" else np.zeros(len(q), bool)
    hurt = planted & ~repair
    qd[hurt], qp[hurt] = easy[hurt], 1 - easy[hurt]
    qd[repair], qp[repair] = 1 - easy[repair], easy[repair]
    return qd, qp


def pick(order: np.ndarray, eligible: np.ndarray, k: int) -> np.ndarray:
    """The first k examples of `order` that are `eligible`, as a mask."""
    mask = np.zeros(len(eligible), bool)
    mask[[i for i in order if eligible[i]][:k]] = True
    return mask


def stacked(split: str, ids, y, groups: dict, rng) -> Stacked:
    m = {g: GroupStack(np.arange(len(p)), logits_of(p, 2, rng), None) for g, p in groups.items()}
    return Stacked(split, "single_label", ids, y, m)


def study(name: str, index: int, args) -> dict:
    """One simulated study through the compare code: {claim: verdict} plus diagnostics."""
    sc = SCENARIOS[name]
    rng = np.random.default_rng([args.seed, list(SCENARIOS).index(name), index])
    n, m = args.n, args.m
    y, y_train = (rng.random(n) < 0.3).astype(np.int64), (rng.random(n) < 0.3).astype(np.int64)
    cls_ok = {"proportional": np.ones(n, bool), "rare": y == 1, "frequent": y == 0}[sc["classes"]]
    order, order_train = rng.permutation(n), rng.permutation(n)
    early = difficulty(n, rng)                                  # the snapshot's chances (independent)
    planted_test = {a: pick(order, cls_ok, int(round(s * n))) for a, s in zip(("bert", "bilstm"), sc["share"])}
    texts = pd.DataFrame({"example_id": [f"ex{i:05d}" for i in range(n)],
                          "text": texts_of(n, planted_test["bert"] & (sc["texts"] == "complex"), rng), "label": y})
    ids = texts["example_id"].to_numpy()
    summaries, analyses = {}, {}
    for arch, share in zip(("bert", "bilstm"), sc["share"]):
        q, q_train = difficulty(n, rng), difficulty(n, rng)
        k = int(round(sc.get("train_share", share) * n))
        if sc["train"] == "early":                               # planted among the snapshot's hardest 20%
            train_planted = pick(rng.permutation(np.argsort(early)[: n // 5]), np.ones(n, bool), k)
        else:
            train_planted = pick(order_train, np.ones(n, bool), k)
        qd, qp = chances(q, planted_test[arch], sc["damage"], rng)
        td, tp = chances(q_train, train_planted, sc["damage"], rng)
        snap = td if sc["snapshot"] == "confounded" else early
        test = stacked("test", ids, y, {"dense": draw_models(qd, y, m, rng, 2),
                                        **{g: draw_models(qp, y, m, rng, 2) for g in GROUPS}}, rng)
        train = stacked("train", ids, y_train, {"dense": draw_models(td, y_train, m, rng, 2),
                                                **{g: draw_models(tp, y_train, m, rng, 2) for g in GROUPS}}, rng)
        snapshot = stacked("train@epoch1", ids, y_train, {"dense": draw_models(snap, y_train, m, rng, 2)}, rng)
        params = {"n_perm": args.n_perm, "n_half": args.n_half, "seed": index}
        core = add_statistics(compare(test, 3, "probability"), StatOptions.from_params(params))
        analysis, _, _ = analyse(core, texts, train=train, snapshot=snapshot, label_names=["neg", "pos"],
                                 meta={"dataset": "sim", "arch": arch, "split": "test"}, n_boot=args.n_boot,
                                 seed=index, progress=False, floor=core.noise_floor, rules=RULES)
        # What summary.json / analysis.json hold, read back as compare's claims step reads them.
        summaries[arch] = json.loads(json.dumps(clean({**core.summary, "noise_floor": core.noise_floor})))
        analyses[arch] = json.loads(json.dumps(analysis))
    out = claims(summaries, analyses, rules=RULES)
    bert = summaries["bert"][GROUPS[0]]
    v = (analyses["bert"]["classes"][GROUPS[0]].get("cramers_v") or {}).get("value")
    b = out["b_el2n_enrichment"].get("primary") or {}   # (b)'s rule before 2026-12-07.1: CMH p < alpha, OR > 1
    old_b = b.get("cmh_p_value") is not None and b["cmh_p_value"] < RULES["alpha"] and (b.get("mh_odds_ratio") or 0) > 1
    return {"scenario": name, "study": index, **{c: out[c]["verdict"] for c in CLAIMS}, "b_cmh_holds": bool(old_b),
            "primary": out[CLAIMS[0]].get("decided_by"), "above_floor": bert["above_floor"],
            "pie_share": bert["pie_share"], "cramers_v": v}


def score(df: pd.DataFrame) -> pd.DataFrame:
    """Per (claim, scenario): the truth and the shares of holds / refuted / inconclusive."""
    rows = []
    for name, sc in SCENARIOS.items():
        d = df[df.scenario == name]
        for c in CLAIMS:
            if d.empty or sc["truth"][c] is None:
                continue
            rows.append({"claim": c, "scenario": name, "truth": sc["truth"][c], "studies": len(d),
                         **{v: float((d[c] == v).mean()) for v in ("holds", "refuted", "inconclusive")}})
    return pd.DataFrame(rows)


def figures(table: pd.DataFrame) -> dict:
    """Per claim: the false-positive rate (holds where the truth is False, studies pooled over
    those scenarios) and the power (holds where it is True), each with the studies behind it."""
    out = {}
    for c in CLAIMS:
        t = table[table.claim == c]
        for key, truth in (("fpr", A), ("power", P), ("holds_confounded", "confounded")):
            r = t[t.truth == truth]
            if len(r):
                out[f"{c[:2].rstrip('_')}_{key}"] = round(float((r.holds * r.studies).sum() / r.studies.sum()), 4)
    return out


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--studies", type=int, default=40, help="studies per scenario")
    ap.add_argument("--null-studies", type=int, default=None, help="studies of `null` (default --studies)")
    ap.add_argument("--scenarios", default=",".join(SCENARIOS))
    ap.add_argument("--n", type=int, default=2000, help="test (and train) examples")
    ap.add_argument("--m", type=int, default=20, help="seeds per group")
    ap.add_argument("--n-perm", type=int, default=2000, help="compare.n_perm (the schema's default)")
    ap.add_argument("--n-half", type=int, default=100, help="compare.n_half (reported, no verdict uses it)")
    ap.add_argument("--n-boot", type=int, default=20, help="analyse's stability / per-group floor draws "
                    "(reported, no verdict uses them; summary.json's floor keeps compare.n_boot)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    t, rows = time.perf_counter(), []
    for name in [s for s in args.scenarios.split(",") if s]:
        k = args.null_studies if name == "null" and args.null_studies else args.studies
        rows += [study(name, i, args) for i in range(k)]
        d = pd.DataFrame([r for r in rows if r["scenario"] == name])
        print(f"{name}: {len(d)} studies, primary above its floor in {d.above_floor.mean():.2f}, PIE share "
              f"{d.pie_share.mean():.3f}, Cramer's V {d.cramers_v.mean():.3f}, {time.perf_counter() - t:.0f} s",
              flush=True)
    table = score(pd.DataFrame(rows))
    with pd.option_context("display.width", 200):
        print(table.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    old = pd.DataFrame(rows).groupby("scenario", sort=False)["b_cmh_holds"].mean().round(4)
    out = {**figures(table), **{f"b_cmh_holds_{k}": float(v) for k, v in old.items()}, "studies": args.studies, "null_studies": args.null_studies or args.studies,
           "n": args.n, "seeds_per_group": args.m, "n_perm": args.n_perm, "seed": args.seed,
           "load_average": round(os.getloadavg()[0], 1), "wall_s": round(time.perf_counter() - t, 1)}
    print(json.dumps(out))
    return out


if __name__ == "__main__":
    main()
