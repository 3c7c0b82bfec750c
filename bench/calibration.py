"""Calibration study: simulated studies with a known truth, run through the file-mode compare
(`compare_files`, what `pie-mlops compare --predictions DIR --out OUT` runs), scored from the
summary.json it writes (docs/calibration.md).

Each example e has a chance q_e that a model of the dense distribution gets it right (most
easy, some hard); a model's prediction is a coin with that chance, its logit a random margin
for the predicted class. Four scenarios, `--studies` studies each, four pruned groups a study:
- `null_pooled`: the pruned models are more seeds (100+) of the dense distribution (`*-ai`
  groups with their own seeds: the pooled permutation);
- `null_paired`: each pruned seed s is dense seed s with `--flip` of its predictions flipped at
  random (`*-os` groups: the paired swap);
- `planted_paired` / `planted_pooled`: as the nulls, but the pruned models also flip a fixed
  1%, 2% and 5% of the examples (`planted_share` 0.01/0.02/0.05), beside one group with none.
First the speed of one group's statistics at 20 vs 20 seeds and 2,500 examples (the floor test
alone, and everything group_stats adds), both designs, best of 3.
Per group: above_floor (Holm within the study), the raw permutation p below alpha, the old
interval rule (pie_share_ci low above the floor's CI high), and whether each point estimate
lies in its interval. The claims' verdicts: bench/calibration_claims.py.
Last stdout line: one JSON object (docs/design.md §6).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from pie_mlops.analysis import permutation as pm  # noqa: E402
from pie_mlops.analysis.group_stats import StatOptions, add_statistics  # noqa: E402
from pie_mlops.compare.files import compare_files  # noqa: E402
from pie_mlops.compare.pies import GroupStack, Stacked, compare  # noqa: E402
from pie_mlops.compare.predictions import predictions_table, write_predictions  # noqa: E402

SCENARIOS = ("null_pooled", "null_paired", "planted_paired", "planted_pooled")
PLANTED = (0.0, 0.01, 0.02, 0.05)   # planted scenarios' groups; nulls use 0.0 four times


def difficulty(n: int, rng) -> np.ndarray:
    """q_e: 70% easy examples (right ~97% of the time), 30% hard (right 30-95% of the time)."""
    return np.where(rng.random(n) < 0.7, rng.beta(40, 1, n), rng.uniform(0.3, 0.95, n))


def draw_models(q: np.ndarray, labels: np.ndarray, m: int, rng, n_classes: int) -> np.ndarray:
    """(m, n) predictions: gold with chance q_e, else another class at random."""
    right = rng.random((m, len(q))) < q
    wrong = (labels + rng.integers(1, n_classes, (m, len(q)))) % n_classes
    return np.where(right, labels, wrong)


def flip(preds: np.ndarray, where: np.ndarray, n_classes: int, rng) -> np.ndarray:
    """`preds` with the predictions at `where` (same shape, bool) moved to another class."""
    other = (preds + rng.integers(1, n_classes, preds.shape)) % n_classes
    return np.where(where, other, preds)


def logits_of(preds: np.ndarray, n_classes: int, rng) -> np.ndarray:
    z = rng.normal(0.0, 0.3, preds.shape + (n_classes,)).astype(np.float32)
    np.put_along_axis(z, preds[..., None], (1.0 + rng.gamma(2.0, 1.0, preds.shape))[..., None].astype(np.float32),
                      axis=-1)
    return z


def simulate(scenario: str, n: int, m_dense: int, m_pruned: int, flip_rate: float, rng,
             n_classes: int = 2) -> tuple[np.ndarray, dict[str, tuple[np.ndarray, np.ndarray]], dict[str, float]]:
    """(labels, {group: (seeds, predictions)}, {group: planted share}) of one study."""
    labels = rng.integers(0, n_classes, n)
    q = difficulty(n, rng)
    dense = draw_models(q, labels, m_dense, rng, n_classes)
    groups = {"dense": (np.arange(m_dense), dense)}
    truth = {}
    paired = scenario.endswith("paired")
    shares = PLANTED if scenario.startswith("planted") else (0.0,) * 4
    for i, share in enumerate(shares):
        planted = np.zeros(n, bool)
        planted[rng.choice(n, int(round(share * n)), replace=False)] = True
        if paired:   # pruned seed s starts from dense seed s
            seeds = np.arange(m_pruned)
            preds = flip(dense[:m_pruned], rng.random((m_pruned, n)) < flip_rate, n_classes, rng)
            preds = flip(preds, np.broadcast_to(planted, preds.shape), n_classes, rng)
            name = f"magnitude-os@0.{i + 1}0"
        else:        # other seeds of the same distribution; planted examples' chances inverted
            seeds = 100 + np.arange(m_pruned)
            preds = draw_models(np.where(planted, 1.0 - q, q), labels, m_pruned, rng, n_classes)
            name = f"random-ai@0.{i + 1}0"
        groups[name] = (seeds, preds)
        truth[name] = share
    return labels, groups, truth


def write_study(root: Path, labels: np.ndarray, groups: dict, rng, n_classes: int = 2) -> None:
    df = pd.DataFrame({"example_id": [f"ex{i:05d}" for i in range(len(labels))], "label": labels})
    for group, (seeds, preds) in groups.items():
        z = logits_of(preds, n_classes, rng)
        for seed, logits in zip(seeds, z):
            table = predictions_table(df, logits, split="test", group=group, seed=int(seed), task="single_label")
            write_predictions(table, root / group.replace("@", "-") / f"s{seed}.parquet")


def inside(summary: dict) -> tuple[bool, bool]:
    """(pie_share in pie_share_ci, every point in its own *_ci) of one group."""
    ok_all = True
    for key, ci in summary.items():
        if key.endswith("_ci") and ci and ci[0] is not None and summary.get(key[:-3]) is not None:
            ok_all &= ci[0] - 1e-12 <= summary[key[:-3]] <= ci[1] + 1e-12
    lo, hi = summary["pie_share_ci"]
    return bool(lo - 1e-12 <= summary["pie_share"] <= hi + 1e-12), bool(ok_all)


def run_study(scenario: str, index: int, args, work: Path) -> list[dict]:
    rng = np.random.default_rng([args.seed, SCENARIOS.index(scenario), index])
    labels, groups, truth = simulate(scenario, args.n, args.m, args.m, args.flip, rng)
    study = work / f"{scenario}-{index}"
    write_study(study / "pred", labels, groups, rng)
    params = {"n_perm": args.n_perm, "n_resample": args.n_resample, "n_half": args.n_half, "n_boot": 100, "alpha": args.alpha,
              "seed": index, "tie_rule": args.tie_rule}
    compare_files(study / "pred", study / "out", "test", 3, params)
    summary = json.loads((study / "out" / "summary.json").read_text())
    floor = summary.pop("noise_floor")
    rows = []
    for group, s in summary.items():
        share_in, all_in = inside(s)
        rows.append({"scenario": scenario, "study": index, "group": group, "planted": truth[group],
                     "above_floor": s["above_floor"], "raw_reject": s["floor_test"]["p_value"] < args.alpha,
                     "interval_rule": s["pie_share_ci"][0] > floor["ci"][1], "share_in_ci": share_in,
                     "all_in_ci": all_in, "pie_share": s["pie_share"], "method": s["floor_test"]["method"],
                     "half_excess": s["pie_share_half"] - s["floor_half"]})
    return rows


def summarise(df: pd.DataFrame) -> pd.DataFrame:
    return (df.groupby(["scenario", "planted"])
              .agg(groups=("group", "size"), above_floor=("above_floor", "mean"), raw_reject=("raw_reject", "mean"),
                   interval_rule=("interval_rule", "mean"), share_in_ci=("share_in_ci", "mean"),
                   all_in_ci=("all_in_ci", "mean"), pie_share=("pie_share", "mean"),
                   half_excess=("half_excess", "mean"))
              .reset_index())


def calibrate(args, work: Path) -> pd.DataFrame:
    rows = []
    for scenario in args.scenarios:
        studies = args.planted_studies if scenario.startswith("planted") and args.planted_studies else args.studies
        for i in range(studies):
            rows += run_study(scenario, i, args, work)
        done = summarise(pd.DataFrame(rows))  # each scenario's lines as it finishes (a long run)
        print(done[done.scenario == scenario].to_string(index=False, header=False, float_format=lambda v: f"{v:.3f}"),
              flush=True)
    return pd.DataFrame(rows)


def figures(df: pd.DataFrame, table: pd.DataFrame) -> dict:
    def rate(scenario, planted, col="above_floor"):
        r = table[(table.scenario == scenario) & (table.planted == planted)]
        return None if r.empty else round(float(r[col].iloc[0]), 4)

    return {"fpr_null_pooled": rate("null_pooled", 0.0), "fpr_null_paired": rate("null_paired", 0.0),
            "raw_fpr_null_pooled": rate("null_pooled", 0.0, "raw_reject"),
            "raw_fpr_null_paired": rate("null_paired", 0.0, "raw_reject"),
            **{f"power_{s.split('_')[1]}_{int(p * 100)}pct": rate(s, p) for s in ("planted_paired", "planted_pooled")
               for p in PLANTED[1:]},
            "point_in_ci": round(float(df["share_in_ci"].mean()), 4) if len(df) else None,
            "every_point_in_its_ci": round(float(df["all_in_ci"].mean()), 4) if len(df) else None,
            "null_groups": int((df.planted == 0).sum())}


def speed(n: int = 2500, m: int = 20, repeats: int = 3) -> dict:
    """Seconds per group: the floor test (schema's n_perm) and all of group_stats, both designs."""
    out = {}
    opts = StatOptions.from_params()
    for scenario in ("planted_paired", "planted_pooled"):
        rng = np.random.default_rng(0)
        labels, groups, _ = simulate(scenario, n, m, m, 0.03, rng)
        name = next(g for g in groups if g != "dense")
        stacks = {g: GroupStack(groups[g][0], logits_of(groups[g][1], 2, rng), None) for g in ("dense", name)}
        st = Stacked("test", "single_label", np.array([f"e{i}" for i in range(n)]), labels, stacks)
        votes = pm.Votes(np.concatenate([stacks["dense"].logits, stacks[name].logits]), "single_label", None,
                         "probability")
        pairs = pm.seed_pairs(name, stacks["dense"].seeds, stacks[name].seeds)
        test_s, all_s, test_cpu, all_cpu = [], [], [], []
        for _ in range(repeats):
            t, c = time.perf_counter(), time.process_time()
            pm.floor_test(votes, m, m, pairs, opts.n_perm, 0)
            test_s.append(time.perf_counter() - t)
            test_cpu.append(time.process_time() - c)
            t, c = time.perf_counter(), time.process_time()
            add_statistics(compare(st, 3, "probability"), opts)
            all_s.append(time.perf_counter() - t)
            all_cpu.append(time.process_time() - c)
        kind = scenario.split("_")[1]
        out[f"floor_test_s_{kind}"] = round(min(test_s), 3)
        out[f"group_stats_s_{kind}"] = round(min(all_s), 3)
        out[f"floor_test_cpu_s_{kind}"] = round(min(test_cpu), 3)
        out[f"group_stats_cpu_s_{kind}"] = round(min(all_cpu), 3)
    print(f"per group at {m} vs {m} seeds, {n} examples, n_perm {opts.n_perm}, n_resample {opts.n_resample}, n_half {opts.n_half} (wall, and CPU s): "
          + ", ".join(f"{k} {v}" for k, v in out.items()))
    return out


def statistics_study(studies: int, n_perm: int, args) -> pd.DataFrame:
    """The three candidate statistics of the floor test on the same simulated groups (the core
    only, no files): the share of groups with a raw permutation p below alpha."""
    rows = []
    for scenario in SCENARIOS:
        for i in range(studies):
            rng = np.random.default_rng([args.seed, 99, SCENARIOS.index(scenario), i])
            labels, groups, truth = simulate(scenario, args.n, args.m, args.m, args.flip, rng)
            dense_seeds, dense = groups.pop("dense")
            for name, (seeds, preds) in groups.items():
                votes = pm.Votes(logits_of(np.concatenate([dense, preds]), 2, rng), "single_label", None,
                                 args.tie_rule)
                pairs = pm.seed_pairs(name, dense_seeds, seeds)
                for stat in pm.STATISTICS:
                    p = pm.floor_test(votes, args.m, args.m, pairs, n_perm, [i, 7], stat)["p_value"]
                    rows.append({"scenario": scenario, "planted": truth[name], "statistic": stat,
                                 "reject": p < args.alpha})
    table = pd.DataFrame(rows).pivot_table(index=["scenario", "planted"], columns="statistic", values="reject",
                                           aggfunc="mean").reset_index()
    print(f"raw p < {args.alpha} by statistic ({studies} studies per scenario, {n_perm} permutations):")
    print(table.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    return table


def uniformity(studies: int, n_perm: int, args) -> dict:
    """The null p-values of one group per independent study (core only): the share below 0.05,
    0.1, 0.2 and 0.5, which a calibrated test keeps at (or, conservative, under) those levels."""
    out = {}
    for scenario in ("null_pooled", "null_paired"):
        ps = []
        for i in range(studies):
            rng = np.random.default_rng([args.seed, 4242, SCENARIOS.index(scenario), i])
            labels, groups, _ = simulate(scenario, args.n, args.m, args.m, args.flip, rng)
            dense_seeds, dense = groups.pop("dense")
            name, (seeds, preds) = next(iter(groups.items()))
            votes = pm.Votes(logits_of(np.concatenate([dense, preds]), 2, rng), "single_label", None, args.tie_rule)
            ps.append(pm.floor_test(votes, args.m, args.m, pm.seed_pairs(name, dense_seeds, seeds), n_perm,
                                    [i, 1])["p_value"])
        ps = np.array(ps)
        out.update({f"{scenario}_p_below_{level}": round(float((ps < level).mean()), 4) for level in (0.05, 0.1, 0.2, 0.5)})
        print(scenario, len(ps), "null p-values; share below 0.05/0.1/0.2/0.5:",
              [out[f"{scenario}_p_below_{level}"] for level in (0.05, 0.1, 0.2, 0.5)], flush=True)
    return out


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--studies", type=int, default=40, help="studies per scenario (4 groups each)")
    ap.add_argument("--n", type=int, default=2000, help="test examples")
    ap.add_argument("--m", type=int, default=20, help="seeds per side")
    ap.add_argument("--flip", type=float, default=0.03, help="paired scenarios: random flips per pruned model")
    ap.add_argument("--n-perm", type=int, default=1000)
    ap.add_argument("--n-resample", type=int, default=1000, help="example-bootstrap replicates (scored)")
    ap.add_argument("--n-half", type=int, default=200, help="seed half-sampling draws (reported, not scored)")
    ap.add_argument("--planted-studies", type=int, default=None, help="studies per planted scenario "
                    "(default --studies)")
    ap.add_argument("--alpha", type=float, default=0.05)
    ap.add_argument("--tie-rule", default="probability")
    ap.add_argument("--scenarios", default=",".join(SCENARIOS))
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--no-speed", action="store_true", help="skip the per-group timing")
    ap.add_argument("--uniformity", type=int, default=0, metavar="STUDIES",
                    help="only the null p-values of one group per study, STUDIES per null (core only)")
    ap.add_argument("--compare-statistics", type=int, default=0, metavar="STUDIES",
                    help="only the three floor-test statistics side by side, STUDIES per scenario (core only)")
    args = ap.parse_args(argv)
    args.scenarios = [s for s in args.scenarios.split(",") if s]
    if args.uniformity:
        out = uniformity(args.uniformity, args.n_perm, args)
        print(json.dumps(out))
        return out
    if args.compare_statistics:
        table = statistics_study(args.compare_statistics, args.n_perm, args)
        out = {f"{r.scenario}_{int(r.planted * 100)}pct_{k}": round(float(getattr(r, k)), 3)
               for r in table.itertuples() for k in pm.STATISTICS}
        print(json.dumps(out))
        return out
    timing = {} if args.no_speed else speed()
    t = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="pie-calibration-") as tmp:
        df = calibrate(args, Path(tmp))
    table = summarise(df)
    with pd.option_context("display.width", 200, "display.max_columns", 20):
        print(table.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    out = {**figures(df, table), **timing, "studies_per_scenario": args.studies,
           "planted_studies": args.planted_studies or args.studies, "n_perm": args.n_perm, "n": args.n, "seeds_per_side": args.m,
           "load_average": round(os.getloadavg()[0], 1), "cpu_count": os.cpu_count(),
           "claims": "bench/calibration_claims.py calibrates the claims' verdicts",
           "wall_s": round(time.perf_counter() - t, 1)}
    print(json.dumps(out))
    return out


if __name__ == "__main__":
    main()
