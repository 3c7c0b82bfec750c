"""Claim (b)'s test alone, at many studies: its false-positive rate and power, with the narrow
Monte-Carlo error that the full claims calibration (bench/calibration_claims.py, 25-50 studies a
scenario, ~14 s a study) cannot give. The same simulated training splits as there (the
scenarios, chances, models and snapshot of calibration_claims.py, one paper-method group of 20
seeds on 2,000 training examples), but only the train-split part is drawn and only
`analysis.run.disjoint_enrichment` runs, about 0.15 s a study.

    python bench/calibration_b.py --studies 600 --seed 0

Prints one line per scenario, then one JSON object: `<scenario>_holds`, `<scenario>_refuted`.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import calibration_claims as cc  # noqa: E402

from pie_mlops.analysis.run import disjoint_enrichment  # noqa: E402


def study(name: str, index: int, seed: int, n: int, m: int, n_perm: int) -> tuple[float, float]:
    """(p_value, p_below) of (b)'s test on one simulated training split."""
    sc = cc.SCENARIOS[name]
    rng = np.random.default_rng([seed, 99, list(cc.SCENARIOS).index(name), index])
    y = (rng.random(n) < 0.3).astype(np.int64)
    early, q = cc.difficulty(n, rng), cc.difficulty(n, rng)
    k = int(round(sc.get("train_share", sc["share"][0]) * n))
    if sc["train"] == "early":                                   # planted among the snapshot's hardest 20%
        planted = cc.pick(rng.permutation(np.argsort(early)[: n // 5]), np.ones(n, bool), k)
    else:
        planted = cc.pick(rng.permutation(n), np.ones(n, bool), k)
    td, tp = cc.chances(q, planted, sc["damage"], rng)
    ids, group = np.array([f"ex{i:05d}" for i in range(n)]), cc.GROUPS[0]
    train = cc.stacked("train", ids, y, {"dense": cc.draw_models(td, y, m, rng, 2),
                                         group: cc.draw_models(tp, y, m, rng, 2)}, rng)
    snap = td if sc["snapshot"] == "confounded" else early
    snapshot = cc.stacked("train@epoch1", ids, y, {"dense": cc.draw_models(snap, y, m, rng, 2)}, rng)
    r = disjoint_enrichment(train, snapshot, group, seed=index, n_perm=n_perm, perm_seed=index)["perm_test"]
    return r["p_value"], r["p_below"]


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--studies", type=int, default=600, help="studies per scenario")
    ap.add_argument("--scenarios", default=",".join(cc.SCENARIOS))
    ap.add_argument("--n", type=int, default=2000, help="training examples")
    ap.add_argument("--m", type=int, default=20, help="seeds per group")
    ap.add_argument("--n-perm", type=int, default=1000, help="relabelings and top-set reassignments")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    t, out = time.perf_counter(), {}
    for name in [s for s in args.scenarios.split(",") if s]:
        ps = np.array([study(name, i, args.seed, args.n, args.m, args.n_perm) for i in range(args.studies)])
        holds, refuted = float((ps[:, 0] < 0.05).mean()), float((ps[:, 1] < 0.05).mean())
        se = np.sqrt(0.05 * 0.95 / len(ps))
        print(f"{name}: truth {cc.SCENARIOS[name]['truth']['b_el2n_enrichment']}, {len(ps)} studies, holds "
              f"{holds:.3f}, refuted {refuted:.3f} (Monte-Carlo SE at 5%: {se:.3f}), {time.perf_counter() - t:.0f} s",
              flush=True)
        out |= {f"{name}_holds": round(holds, 4), f"{name}_refuted": round(refuted, 4)}
    out |= {"studies": args.studies, "n": args.n, "seeds_per_group": args.m, "n_perm": args.n_perm,
            "seed": args.seed, "load_average": round(os.getloadavg()[0], 1), "wall_s": round(time.perf_counter() - t, 1)}
    print(json.dumps(out))
    return out


if __name__ == "__main__":
    main()
