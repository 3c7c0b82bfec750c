"""Shared statistics helpers: percentile intervals, Mann-Whitney U with Cliff's delta, Holm, Jaccard."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
from scipy import stats as _st


def percentile_interval(samples: np.ndarray, level: float = 0.95, axis: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Equal-tailed percentile interval of bootstrap `samples` along `axis`; NaN replicates ignored."""
    alpha = (1.0 - level) / 2.0
    lo = np.nanquantile(samples, alpha, axis=axis)
    hi = np.nanquantile(samples, 1.0 - alpha, axis=axis)
    return lo, hi


def cliffs_delta_from_u(u: float, n1: int, n2: int) -> float:
    """Cliff's delta from the Mann-Whitney U of the first sample: P(X>Y) - P(X<Y).

    This is the same number as the rank-biserial correlation 2U/(n1 n2) - 1, so one
    definition serves both names; positive means the first sample tends to be larger.
    """
    return 2.0 * u / (n1 * n2) - 1.0 if n1 and n2 else float("nan")


def mann_whitney(x: np.ndarray, y: np.ndarray) -> dict[str, float]:
    """Two-sided Mann-Whitney U test of x vs y, NaNs dropped, with Cliff's delta (x over y).

    Returns {"u", "p_value", "cliffs_delta"}; all NaN when a side is empty or both sides are one
    constant (scipy would warn and return NaN anyway).
    """
    x = np.asarray(x, float)
    y = np.asarray(y, float)
    x, y = x[~np.isnan(x)], y[~np.isnan(y)]
    if len(x) == 0 or len(y) == 0:
        return {"u": float("nan"), "p_value": float("nan"), "cliffs_delta": float("nan")}
    if np.ptp(np.concatenate([x, y])) == 0:
        # All values equal: no difference to test; delta is exactly 0, p is 1 by symmetry.
        return {"u": len(x) * len(y) / 2.0, "p_value": 1.0, "cliffs_delta": 0.0}
    res = _st.mannwhitneyu(x, y, alternative="two-sided")
    u = float(res.statistic)  # scipy returns U of the FIRST sample
    return {"u": u, "p_value": float(res.pvalue), "cliffs_delta": cliffs_delta_from_u(u, len(x), len(y))}


def holm(pvalues: Iterable[float]) -> np.ndarray:
    """Holm-Bonferroni adjusted p-values (step-down, monotone, capped at 1); NaNs stay NaN."""
    p = np.asarray(list(pvalues), dtype=float)
    out = np.full_like(p, np.nan)
    ok = np.flatnonzero(~np.isnan(p))
    if len(ok) == 0:
        return out
    order = ok[np.argsort(p[ok], kind="stable")]
    m = len(order)
    adj = np.maximum.accumulate((m - np.arange(m)) * p[order])
    out[order] = np.minimum(adj, 1.0)
    return out


def jaccard(a: set | np.ndarray, b: set | np.ndarray) -> float:
    """|A ∩ B| / |A ∪ B| of two sets or two boolean masks; two empty sets are identical, so 1.0."""
    if isinstance(a, set) or isinstance(b, set):
        a, b = set(a), set(b)
        union = len(a | b)
        return len(a & b) / union if union else 1.0
    a, b = np.asarray(a, bool), np.asarray(b, bool)
    union = int(np.count_nonzero(a | b))
    return int(np.count_nonzero(a & b)) / union if union else 1.0


def bootstrap_ci(values: np.ndarray, n_boot: int = 2000, seed: int = 0, level: float = 0.95) -> list[float | None]:
    """Percentile bootstrap interval of the mean of `values` (resampled with replacement);
    [None, None] without values. One value gives the degenerate [v, v]."""
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v)]
    if len(v) == 0:
        return [None, None]
    rng = np.random.default_rng(seed)
    means = v[rng.integers(0, len(v), (n_boot, len(v)))].mean(axis=1)
    lo, hi = percentile_interval(means, level)
    return [float(lo), float(hi)]


def clears_floor(share_ci, floor: dict | None) -> bool:
    """A PIE share is above the noise floor when its interval lies wholly above the floor's:
    low end of the share's CI over the high end of the dense-vs-dense CI. No floor (one dense
    model) or no CI: nothing can be said, so False."""
    if not floor or not share_ci or share_ci[0] is None:
        return False
    ci = floor.get("ci") or [None, None]
    return ci[1] is not None and share_ci[0] > ci[1]
