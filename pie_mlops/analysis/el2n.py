"""EL2N scores (Paul et al. 2021) and how PIEs and pruning damage spread over them.

EL2N is ‖p(x) − onehot(y)‖₂ per example, p the softmax (sigmoid for multi-label, against the
multi-hot target), averaged over dense seeds and taken early in training (e.g. the
`train@epoch1` predictions). High EL2N means hard and influential.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats as _st

TASKS = ("single_label", "multi_label")


def _softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(axis=-1, keepdims=True))  # shift: no overflow for large logits
    return e / e.sum(axis=-1, keepdims=True)


def _sigmoid(z: np.ndarray) -> np.ndarray:
    # Two branches so neither exp overflows (exp of a large positive number).
    out = np.empty_like(z)
    pos = z >= 0
    out[pos] = 1.0 / (1.0 + np.exp(-z[pos]))
    ez = np.exp(z[~pos])
    out[~pos] = ez / (1.0 + ez)
    return out


def el2n_scores(logits: np.ndarray, labels: np.ndarray, task: str = "single_label") -> np.ndarray:
    """Per-example EL2N, averaged over models.

    logits: (n_models, n_examples, C), or (n_examples, C) for one model.
    labels: (n_examples,) class indices for `single_label`; (n_examples, C) multi-hot for
        `multi_label` (probabilities are sigmoids, each label scored on its own).
    Returns (n_examples,) float64. Computed in float64 so float32 logits lose nothing.
    """
    if task not in TASKS:
        raise ValueError(f"task must be one of {TASKS}, got {task!r}")
    z = np.asarray(logits, dtype=np.float64)
    if z.ndim == 2:
        z = z[None]
    if z.ndim != 3:
        raise ValueError(f"logits must be (n_models, n_examples, C), got shape {z.shape}")
    _, n, c = z.shape
    y = np.asarray(labels)
    if task == "single_label":
        if y.shape != (n,):
            raise ValueError(f"single-label labels must be ({n},), got {y.shape}")
        if len(y) and (y.min() < 0 or y.max() >= c):
            raise ValueError(f"labels must lie in 0..{c - 1}")
        target = np.eye(c)[y]
        probs = _softmax(z)
    else:
        if y.shape != (n, c):
            raise ValueError(f"multi-label labels must be ({n}, {c}) multi-hot, got {y.shape}")
        target = y.astype(np.float64)
        probs = _sigmoid(z)
    return np.linalg.norm(probs - target[None], axis=-1).mean(axis=0)


def percentile_bins(scores: np.ndarray, n_bins: int = 20, ties: str = "average") -> np.ndarray:
    """Bin index 0..n_bins-1 by percentile rank: bin = floor(n_bins · (rank − 1) / n).

    Without ties this gives equal-size bins (40 scores, 20 bins: two per bin, lowest scores in
    bin 0). Ties are handled deterministically either way:
    - `"average"` (default): tied scores share their average rank, hence one bin, since
      splitting equal scores by their position in the array would be arbitrary;
    - `"ordinal"`: ties broken by position (stable sort), which keeps bins exactly equal-sized.
    NaN scores are not allowed (a NaN has no rank).
    """
    s = np.asarray(scores, dtype=float)
    if np.isnan(s).any():
        raise ValueError("scores contain NaN")
    if ties not in ("average", "ordinal"):
        raise ValueError("ties must be 'average' or 'ordinal'")
    n = len(s)
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    rank = _st.rankdata(s, method=ties)  # 1..n; 'ordinal' is a stable sort
    return np.minimum(np.floor(n_bins * (rank - 1) / n), n_bins - 1).astype(np.int64)


def _per_example(x: np.ndarray | None, n: int, name: str) -> np.ndarray:
    """A (n,) per-example vector; a (n_models, n) array is averaged over its models."""
    a = np.asarray(x, dtype=float)
    if a.ndim == 2:
        a = a.mean(axis=0)
    if a.shape != (n,):
        raise ValueError(f"{name} must be ({n},) or (n_models, {n}), got {np.shape(x)}")
    return a


def paired_loss_ratio(dense_loss: np.ndarray, pruned_loss: np.ndarray) -> np.ndarray:
    """(n,) the paper's per-example ratio: pruned / dense loss of the *same seed* (the pruned
    model grown from that dense model), averaged over the seeds. Both (n_seeds, n), rows
    paired. A dense loss of exactly 0 (underflow) is lifted to the smallest normal float, so
    the ratio is large but finite."""
    d = np.asarray(dense_loss, dtype=np.float64)
    p = np.asarray(pruned_loss, dtype=np.float64)
    if d.ndim != 2 or d.shape != p.shape:
        raise ValueError(f"paired losses must be two (n_seeds, n) arrays of one shape, got {d.shape} and {p.shape}")
    return (p / np.maximum(d, np.finfo(np.float64).tiny)).mean(axis=0)


def influence_table(el2n: np.ndarray, is_pie: np.ndarray, dense_loss: np.ndarray,
                    pruned_loss: np.ndarray, n_bins: int = 20, paired: np.ndarray | None = None) -> pd.DataFrame:
    """Per EL2N percentile bin: mean dense and pruned loss, their ratio, and the PIE share.

    dense_loss/pruned_loss are per-example losses, (n,) or (n_models, n) (then averaged over
    models first). `loss_ratio` = mean pruned loss / mean dense loss in the bin (ratio of
    means: robust to dense losses near 0). `paired_loss_ratio` = the bin's mean of `paired`,
    the seed-paired per-example ratios (`paired_loss_ratio()`): the paper's number, NaN
    without them. Empty bins (fewer examples than bins) are left out.
    """
    s = np.asarray(el2n, dtype=float)
    n = len(s)
    pie = np.asarray(is_pie, dtype=bool)
    if pie.shape != (n,):
        raise ValueError(f"is_pie must be ({n},), got {pie.shape}")
    d = _per_example(dense_loss, n, "dense_loss")
    p = _per_example(pruned_loss, n, "pruned_loss")
    r = np.full(n, np.nan) if paired is None else _per_example(paired, n, "paired")
    df = pd.DataFrame({"bin": percentile_bins(s, n_bins), "el2n": s, "pie": pie,
                       "dense_loss": d, "pruned_loss": p, "paired": r})
    out = df.groupby("bin", sort=True).agg(
        n=("el2n", "size"), el2n_min=("el2n", "min"), el2n_max=("el2n", "max"),
        dense_loss=("dense_loss", "mean"), pruned_loss=("pruned_loss", "mean"),
        n_pies=("pie", "sum"), pie_share=("pie", "mean"), paired_loss_ratio=("paired", "mean"))
    out["loss_ratio"] = out["pruned_loss"] / out["dense_loss"]
    out["n_pies"] = out["n_pies"].astype(np.int64)
    return out.reset_index()[["bin", "n", "el2n_min", "el2n_max", "dense_loss", "pruned_loss",
                              "loss_ratio", "paired_loss_ratio", "n_pies", "pie_share"]]


def top_share(el2n: np.ndarray, is_pie: np.ndarray, q: float) -> dict[str, float]:
    """Share of PIEs among the top-q EL2N examples against the base PIE rate.

    The top set holds k = ceil(q · n) examples, highest EL2N first, ties by position (stable),
    so the result is deterministic. Returns k, n_pies_top, top_share, base_rate,
    enrichment (top_share / base_rate; NaN without PIEs) and p_value: the one-sided
    hypergeometric chance of at least n_pies_top PIEs in k examples drawn at random.
    """
    if not 0.0 < q <= 1.0:
        raise ValueError("q must be in (0, 1]")
    s = np.asarray(el2n, dtype=float)
    pie = np.asarray(is_pie, dtype=bool)
    if pie.shape != s.shape or s.ndim != 1:
        raise ValueError("el2n and is_pie must be 1-D and the same length")
    n = len(s)
    # Round before ceil: 0.05 * 100 is 5.000000000000001 in floating point.
    k = int(np.ceil(round(q * n, 9)))
    top = np.argsort(-s, kind="stable")[:k]
    hits = int(pie[top].sum())
    total = int(pie.sum())
    base = total / n if n else float("nan")
    share = hits / k if k else float("nan")
    p = float(_st.hypergeom.sf(hits - 1, n, total, k)) if k else float("nan")
    return {"q": q, "k": k, "n_pies_top": hits, "top_share": share, "base_rate": base,
            "enrichment": share / base if base > 0 else float("nan"), "p_value": p}


def cmh_test(tables: np.ndarray) -> dict:
    """Cochran-Mantel-Haenszel test of a common odds ratio of 1 over K 2x2 tables
    [[a, b], [c, d]] (K, 2, 2), with the continuity correction, and the Mantel-Haenszel common
    odds ratio. Strata with fewer than 2 examples or an empty margin carry no information and
    are skipped. {odds_ratio, statistic, p_value} (None where undefined)."""
    t = np.asarray(tables, dtype=np.float64).reshape(-1, 2, 2)
    a, b, c, d = t[:, 0, 0], t[:, 0, 1], t[:, 1, 0], t[:, 1, 1]
    n = t.sum(axis=(1, 2))
    r1, r2, c1, c2 = a + b, c + d, a + c, b + d
    keep = (n > 1) & (r1 > 0) & (r2 > 0) & (c1 > 0) & (c2 > 0)
    out = {"odds_ratio": None, "statistic": None, "p_value": None, "strata_used": int(keep.sum())}
    if not keep.any():
        return out
    a, b, c, d, n, r1, r2, c1, c2 = (x[keep] for x in (a, b, c, d, n, r1, r2, c1, c2))
    expected = r1 * c1 / n
    var = r1 * r2 * c1 * c2 / (n * n * (n - 1))
    stat = (max(abs((a - expected).sum()) - 0.5, 0.0)) ** 2 / var.sum()
    num, den = (a * d / n).sum(), (b * c / n).sum()
    out.update(statistic=float(stat), p_value=float(_st.chi2.sf(stat, 1)),
               odds_ratio=float(num / den) if den > 0 else (float("inf") if num > 0 else None))
    return out


def stratified_enrichment(el2n: np.ndarray, is_pie: np.ndarray, strata: np.ndarray, q: float = 0.10) -> dict:
    """Claim (b): are top-q EL2N examples more often PIEs, within each stratum (e.g. dense modal
    label right / wrong)? One 2x2 table (top-q or not) x (PIE or not) per stratum, CMH over them."""
    s = np.asarray(el2n, dtype=float)
    pie = np.asarray(is_pie, dtype=bool)
    k = int(np.ceil(round(q * len(s), 9)))
    top = np.zeros(len(s), bool)
    top[np.argsort(-s, kind="stable")[:k]] = True
    strata = np.asarray(strata)
    tables, rows = [], []
    for v in np.unique(strata):
        m = strata == v
        tab = [[int((top & pie & m).sum()), int((top & ~pie & m).sum())],
               [int((~top & pie & m).sum()), int((~top & ~pie & m).sum())]]
        tables.append(tab)
        n_top, n_rest = tab[0][0] + tab[0][1], tab[1][0] + tab[1][1]
        rows.append({"stratum": v.item() if hasattr(v, "item") else v, "table": tab,
                     "pie_share_top": tab[0][0] / n_top if n_top else None,
                     "pie_share_rest": tab[1][0] / n_rest if n_rest else None})
    return {"q": q, "k": k, **cmh_test(np.array(tables)), "strata": rows}
