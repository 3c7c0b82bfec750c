"""The test against the noise floor and seed half-sampling, on vote-count tensors (docs/design.md
§3 "Claims and statistics"). Pure numpy: arrays in, numbers out.

Every question here is "which of these M models sit on side A, which on side B", asked P times
at once: a (P, M) 0/1 selection matrix times the models' one-hot votes (M, n*C) gives every
draw's vote counts in one matrix product, and from them every draw's modal labels (with the
tie rule) or vote shares. No loop over draws, so 2,000 permutations of 40 models on 2,500
examples take well under a second (bench/calibration.py prints the figure).

**Permutation test.** H0: the pruned models are exchangeable with dense ones (pruning changes
nothing beyond seed noise). Paired groups (os/ft/wr pruned from dense seed s; ai trained from
seed s) swap each seed's dense and pruned model at random; others permute the pooled models.
Either way the reference set is a group of relabelings, so the p-value is exact at any m.

The statistic is the **vote distance**: the mean over examples of the total-variation distance
between the two sides' vote shares (1 on an example both sides vote unanimously for different
labels, so it is the PIE share with each PIE weighted by how decisively the votes differ).
The PIE share itself (the modal labels) is the other choice and is no use here: an effect
that flips the same examples in every pruned model survives almost every relabeling (any
relabeling that leaves one side a majority of pruned models keeps those examples PIEs), so
its permutation p-value stays near 1 - P(an exact half split) ~ 0.8 whatever the effect
(docs/calibration.md measures both).
"""

from __future__ import annotations

import numpy as np

from pie_mlops.pies import model_predictions
from pie_mlops.vocabulary import SCHEDULES

PAIRED_SCHEDULES = frozenset(SCHEDULES)  # os/ft/wr start from dense seed s; ai trains from seed s
CHUNK_ELEMENTS = 1 << 22                 # draws per matrix product: P*n*C stays ~16 MB of float32


class Votes:
    """The pooled models' one-hot votes (and softmax, for the probability tie rule)."""

    def __init__(self, logits: np.ndarray, task: str, thresholds: np.ndarray | None, tie_rule: str):
        preds = model_predictions(logits, task, thresholds)
        m, n, c = logits.shape
        self.task, self.tie_rule, self.n, self.c = task, tie_rule, n, c
        if task == "multi_label":
            self.onehot = preds.reshape(m, n * c).astype(np.float32)
        else:
            onehot = np.zeros((m, n, c), np.float32)
            np.put_along_axis(onehot, preds[..., None], 1.0, axis=-1)
            self.onehot = onehot.reshape(m, n * c)
        self.prob = None
        if task != "multi_label" and tie_rule == "probability":
            z = logits.astype(np.float64)
            p = np.exp(z - z.max(axis=-1, keepdims=True))
            self.prob = (p / p.sum(axis=-1, keepdims=True)).astype(np.float32).reshape(m, n * c)

    def counts(self, sel: np.ndarray) -> np.ndarray:
        """(P, n, C) vote counts of the models selected by each row of `sel` (P, M)."""
        return (sel.astype(np.float32) @ self.onehot).reshape(len(sel), self.n, self.c)

    def modal(self, sel: np.ndarray) -> np.ndarray:
        """(P, n) modal labels (or (P, n, C) multi-label decisions) of each selection."""
        counts, size = self.counts(sel), sel.sum(axis=1).astype(np.float32)[:, None, None]
        if self.task == "multi_label":
            return 2 * counts > size                     # strict majority, as pies.modal_labels
        if self.prob is not None:
            # A count difference is >= 1 and half a mean-probability difference < 0.5: the
            # probability only decides among tied counts, as pies.modal_labels does.
            mean = (sel.astype(np.float32) @ self.prob).reshape(counts.shape) / size
            counts = counts + 0.5 * mean
        return counts.argmax(axis=-1)                    # the lowest index among equals: the paper's

    def shares(self, sel: np.ndarray) -> np.ndarray:
        return self.counts(sel) / sel.sum(axis=1).astype(np.float32)[:, None, None]


def _chunks(votes: Votes, p: int) -> list[slice]:
    step = max(1, CHUNK_ELEMENTS // max(1, votes.n * votes.c))
    return [slice(i, min(p, i + step)) for i in range(0, p, step)]


def pie_shares(votes: Votes, sel_a: np.ndarray, sel_b: np.ndarray) -> np.ndarray:
    """(P,) PIE share between side A's and side B's modal labels, for each row."""
    out = np.empty(len(sel_a))
    for s in _chunks(votes, len(sel_a)):
        diff = votes.modal(sel_a[s]) != votes.modal(sel_b[s])
        out[s] = (diff.any(axis=-1) if diff.ndim == 3 else diff).mean(axis=1)
    return out


def vote_distances(votes: Votes, sel_a: np.ndarray, sel_b: np.ndarray) -> np.ndarray:
    """(P,) mean over examples of the total-variation distance between the sides' vote shares
    (multi-label: the mean over labels of |share on A - share on B|)."""
    out = np.empty(len(sel_a))
    for s in _chunks(votes, len(sel_a)):
        d = np.abs(votes.shares(sel_a[s]) - votes.shares(sel_b[s]))
        out[s] = (d.mean(axis=-1) if votes.task == "multi_label" else 0.5 * d.sum(axis=-1)).mean(axis=1)
    return out


STATISTICS = {"vote_distance": vote_distances, "pie_share": pie_shares}


def schedule_of(group: str) -> str | None:
    head = group.split("@", 1)[0].split("-")
    return head[1] if len(head) >= 2 else None


def seed_pairs(group: str, dense_seeds: np.ndarray, pruned_seeds: np.ndarray) -> np.ndarray | None:
    """(m_p,) the dense model index of each pruned model's seed when the group is paired
    (a paper schedule and every pruned seed among the dense seeds), else None."""
    if schedule_of(group) not in PAIRED_SCHEDULES:
        return None
    idx = np.searchsorted(dense_seeds, pruned_seeds)
    ok = (idx < len(dense_seeds)) & (dense_seeds[np.minimum(idx, len(dense_seeds) - 1)] == pruned_seeds)
    return idx if len(pruned_seeds) and ok.all() else None


def relabelings(md: int, mp: int, pairs: np.ndarray | None, n_perm: int, rng) -> np.ndarray:
    """(n_perm, md+mp) bool: side A (dense's side) of each random relabeling. Paired: each
    pair's two models swap sides with probability 1/2; pooled: a random md of the md+mp."""
    m = md + mp
    if pairs is not None:
        sel = np.zeros((n_perm, m), bool)
        sel[:, :md] = True
        swap = rng.random((n_perm, mp)) < 0.5
        sel[:, pairs] = ~swap
        sel[:, md:] = swap
        return sel
    order = np.argsort(rng.random((n_perm, m)), axis=1)[:, :md]
    sel = np.zeros((n_perm, m), bool)
    np.put_along_axis(sel, order, True, axis=1)
    return sel


def floor_test(votes: Votes, md: int, mp: int, pairs: np.ndarray | None, n_perm: int, seed,
               statistic: str = "vote_distance") -> dict:
    """Permutation p-value of the group's `statistic` (dense side = the first md models of
    `votes`) against `n_perm` relabelings: (1 + #{T_perm >= T_obs}) / (1 + n_perm)."""
    fn = STATISTICS[statistic]
    obs = np.zeros((1, md + mp), bool)
    obs[0, :md] = True
    t_obs = float(fn(votes, obs, ~obs)[0])
    sel = relabelings(md, mp, pairs, n_perm, np.random.default_rng(seed))
    t = fn(votes, sel, ~sel)
    exceed = int(np.count_nonzero(t >= t_obs - 1e-9))  # equal values count against H0 (float noise)
    return {"p_value": (1 + exceed) / (1 + n_perm), "method": "paired_swap" if pairs is not None else "pooled",
            "statistic": statistic, "observed": t_obs, "null_mean": float(t.mean()),
            "seeds_per_side": int(mp), "n_dense_models": int(md), "n_perm": int(n_perm)}


def half_samples(md: int, mp: int, pairs: np.ndarray | None, k: int, n: int, rng) -> tuple[np.ndarray, np.ndarray]:
    """(A, B) selections of k dense models and k pruned models of other seeds, n times.
    Paired: 2k distinct seeds, the dense model of the first k against the pruned model of
    the other k (so, like the floor, the two sides share no seed)."""
    a, b = np.zeros((n, md + mp), bool), np.zeros((n, md + mp), bool)
    rows = np.arange(n)[:, None]
    if pairs is not None:
        draw = np.argsort(rng.random((n, mp)), axis=1)[:, :2 * k]
        a[rows, pairs[draw[:, :k]]] = True
        b[rows, md + draw[:, k:]] = True
    else:
        a[rows, np.argsort(rng.random((n, md)), axis=1)[:, :k]] = True
        b[rows, md + np.argsort(rng.random((n, mp)), axis=1)[:, :k]] = True
    return a, b


def floor_samples(md: int, m: int, k: int, n: int, rng) -> tuple[np.ndarray, np.ndarray]:
    """(A, B): two disjoint draws of k of the first md (dense) models, n times."""
    draw = np.argsort(rng.random((n, md)), axis=1)[:, :2 * k]
    a, b = np.zeros((n, m), bool), np.zeros((n, m), bool)
    rows = np.arange(n)[:, None]
    a[rows, draw[:, :k]] = True
    b[rows, draw[:, k:]] = True
    return a, b
