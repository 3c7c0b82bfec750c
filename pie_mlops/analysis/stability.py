"""How far to trust a PIE set: its stability over seeds, the dense-vs-dense noise floor, overlaps.

- **Stability.** Draw two *disjoint* size-k subsets of the dense models and of the pruned
  models, and take the Jaccard overlap of the two PIE sets: how reproducible is a k-seed PIE
  set? Only k with 2k <= either group's model count is drawn: overlapping draws share models,
  and at k = m they coincide (Jaccard 1 by construction), which would overstate stability.
- **Noise floor.** Two disjoint halves of the *dense* seeds also disagree on some examples.
  Counting those "PIEs" with the same rule gives the share that seed noise alone produces.
  A pruned group is compared with it at the same number of models per side (k = m_dense // 2),
  since fewer models per side mean noisier modal labels. With few seeds the floor is high;
  that is the honest answer, not a flaw: it says more seeds are needed.
- **Overlap.** Jaccard matrix of the PIE sets of all pruned groups.
"""

from __future__ import annotations

import numpy as np

from pie_mlops.analysis.stats import jaccard, percentile_interval
from pie_mlops.compare.pies import GroupStack, modal_labels, pie_flags

KS = (2, 3, 5, 10, 15, 20, 30)


def _sub(stack: GroupStack, idx: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
    return stack.logits[idx], None if stack.thresholds is None else stack.thresholds[idx]


def _flags(dense: GroupStack, d_idx: np.ndarray, pruned: GroupStack, p_idx: np.ndarray, task: str) -> np.ndarray:
    (dl, dt), (pl, pt) = _sub(dense, d_idx), _sub(pruned, p_idx)
    return pie_flags(modal_labels(dl, task, dt), modal_labels(pl, task, pt))


def _two_draws(m: int, k: int, rng) -> tuple[np.ndarray, np.ndarray]:
    """Two disjoint k-model subsets of m >= 2k models."""
    perm = rng.permutation(m)
    return perm[:k], perm[k:2 * k]


def stability_curve(dense: GroupStack, pruned: GroupStack, task: str, ks=KS, n_boot: int = 100,
                    seed: int = 0) -> dict:
    """Jaccard overlap of two disjoint k-model PIE sets, mean and 95% percentile interval
    over `n_boot` replicates, for each k in `ks` with 2k <= both groups' model counts."""
    rng = np.random.default_rng(seed)
    m = min(len(dense.seeds), len(pruned.seeds))
    out = {"k": [], "jaccard_mean": [], "jaccard_low": [], "jaccard_high": []}
    for k in (k for k in ks if 2 * k <= m):
        values = np.empty(n_boot)
        for b in range(n_boot):
            (d1, d2), (p1, p2) = _two_draws(len(dense.seeds), k, rng), _two_draws(len(pruned.seeds), k, rng)
            values[b] = jaccard(_flags(dense, d1, pruned, p1, task), _flags(dense, d2, pruned, p2, task))
        lo, hi = percentile_interval(values)
        out["k"].append(int(k))
        out["jaccard_mean"].append(float(values.mean()))
        out["jaccard_low"].append(float(lo))
        out["jaccard_high"].append(float(hi))
    return out


def noise_floor(dense: GroupStack, task: str, n_boot: int = 200, seed: int = 0) -> dict:
    """Share of dense-vs-dense "PIEs" between two disjoint halves of k = m // 2 dense models,
    over `n_boot` random splits: mean and 95% percentile interval. Needs 2+ dense models.

    Caveat: with few seeds (5 dense: k = 2 per side) each side's modal label is noisy, so the
    floor is high and only large PIE shares clear it; that says "train more seeds", not
    "pruning is harmless"."""
    m = len(dense.seeds)
    k = m // 2
    if k < 1:
        return {"k": 0, "floor_share": None, "floor_low": None, "floor_high": None}
    rng = np.random.default_rng(seed)
    shares = np.empty(n_boot)
    for b in range(n_boot):
        perm = rng.permutation(m)
        shares[b] = _flags(dense, perm[:k], dense, perm[k:2 * k], task).mean()
    lo, hi = percentile_interval(shares)
    return {"k": int(k), "floor_share": float(shares.mean()), "floor_low": float(lo), "floor_high": float(hi)}


def group_against_floor(dense: GroupStack, pruned: GroupStack, task: str, floor: dict, n_boot: int = 200,
                        seed: int = 0) -> dict:
    """A pruned group's PIE share beside the noise floor.

    pie_share uses all models; its 95% interval resamples each group's models with
    replacement. pie_share_at_k (with its interval) draws k dense vs k pruned models (k = the
    floor's): the like-for-like number, so above_floor = pie_share_at_k_low > floor_high.

    Caveat: with 3-5 seeds a resample repeats models, which makes modal labels noisier, so
    the percentile interval leans upwards and can even exclude pie_share itself (seen on
    real 3-seed groups). Read it as "how much seed luck moves the share", not as a
    calibrated interval; the cure is more seeds."""
    rng = np.random.default_rng(seed)
    md, mp = len(dense.seeds), len(pruned.seeds)
    full = _flags(dense, np.arange(md), pruned, np.arange(mp), task).mean()
    boot = np.array([_flags(dense, rng.integers(0, md, md), pruned, rng.integers(0, mp, mp), task).mean()
                     for _ in range(n_boot)])
    lo, hi = percentile_interval(boot)
    out = {"pie_share": float(full), "pie_share_low": float(lo), "pie_share_high": float(hi),
           "pie_share_at_k": None, "pie_share_at_k_low": None, "pie_share_at_k_high": None, "above_floor": None}
    k = floor.get("k") or 0
    if k >= 1 and mp >= k:
        at_k = np.array([_flags(dense, rng.choice(md, k, replace=False), pruned, rng.choice(mp, k, replace=False),
                                task).mean() for _ in range(n_boot)])
        klo, khi = percentile_interval(at_k)
        # Like for like: k models per side on both sides of the comparison.
        out.update(pie_share_at_k=float(at_k.mean()), pie_share_at_k_low=float(klo), pie_share_at_k_high=float(khi),
                   above_floor=bool(klo > floor["floor_high"]))
    return out


def overlap_matrix(flags: dict[str, np.ndarray]) -> dict:
    """Jaccard overlap of every pair of PIE sets: {"groups": [...], "jaccard": [[...]]}."""
    groups = sorted(flags)
    mat = [[1.0 if a == b else jaccard(flags[a], flags[b]) for b in groups] for a in groups]
    return {"groups": groups, "jaccard": mat}
