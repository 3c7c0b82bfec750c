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

The statistic is the **decisive PIE share**: the PIE share with each PIE weighted by how
decisively both sides voted for their own modal label over the other's (1 when both vote
unanimously, 0 when a tie made the PIE). Two others were measured and rejected
(docs/calibration.md):
- the plain PIE share has no power: an effect that flips the same examples in every pruned
  model survives almost every relabeling (any relabeling that leaves one side a majority of
  pruned models keeps those examples PIEs), so its p-value stays near 1 - P(an exact half
  split), ~0.8, whatever the effect;
- the vote distance (total variation between the sides' vote shares) rejects pruned models
  that are merely noisier (a few percent of predictions flipped at random) every time: that
  changes vote shares everywhere but makes no example a PIE.
The paired null (random flips) is not exchangeable, so the paired swap is exact only for
exchangeable pairs; the calibration measures it there (conservative).
"""

from __future__ import annotations

import math

import numpy as np

from pie_mlops.compare.pies import model_predictions
from pie_mlops.config.vocabulary import SCHEDULES

PAIRED_SCHEDULES = frozenset(SCHEDULES)  # os/ft/wr start from dense seed s; ai trains from seed s
CHUNK_ELEMENTS = 1 << 22                 # draws per matrix product: P*n*C stays ~16 MB of float32


class Votes:
    """The pooled models' votes as one matrix: one-hot, and under the probability tie rule
    2M x one-hot + softmax, so that one product gives 2M x counts + summed probabilities: a
    count difference (>= 2M) always outweighs a probability-sum difference (< M), so the argmax
    is the most votes, then the highest mean probability, then the lowest index, as
    pies.modal_labels; the counts are the integer part over 2M. Single-label keeps C-1 class
    columns: the last is the selection's size x (2M + 1) (or x 1) less the others."""

    def __init__(self, logits: np.ndarray, task: str, thresholds: np.ndarray | None, tie_rule: str):
        preds = model_predictions(logits, task, thresholds)
        m, n, c = logits.shape
        self.task, self.n, self.c, self.scale = task, n, c, 1.0
        if task == "multi_label":
            self.votes = preds.reshape(m, n * c).astype(np.float32)
            return
        onehot = np.zeros((m, n, c), np.float32)
        np.put_along_axis(onehot, preds[..., None], 1.0, axis=-1)
        if tie_rule == "probability":
            z = logits.astype(np.float64)
            p = np.exp(z - z.max(axis=-1, keepdims=True))
            p /= p.sum(axis=-1, keepdims=True)
            self.scale = 2.0 * m
            onehot = self.scale * onehot + p
        self.votes = np.ascontiguousarray(onehot[..., :-1], dtype=np.float32).reshape(m, n * (c - 1))

    def side(self, sel: np.ndarray, raw: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(vote shares (P, n, C), modal labels (P, n) or multi-label decisions (P, n, C)).
        `raw`: `self.raw(sel)`, when the caller has it."""
        raw = self.raw(sel) if raw is None else raw
        size = sel.sum(axis=1).astype(np.float32)[:, None, None]
        if self.task == "multi_label":
            return raw / size, 2 * raw > size            # strict majority, as pies.modal_labels
        last = size[..., 0] * (self.scale + (self.scale != 1.0)) - raw.sum(axis=-1)
        raw = np.concatenate([raw, last[..., None]], axis=-1)
        counts = raw if self.scale == 1.0 else np.floor(raw / self.scale + 1e-3)  # float32 sums: round, not truncate
        # argmax over the last axis, the first maximum (the paper's lowest index among equals), by
        # a loop over the few classes: numpy's argmax over 2-5 values per example is ~10x slower.
        label = np.zeros(raw.shape[:-1], np.int64)
        top = raw[..., 0].copy()
        for k in range(1, self.c):
            np.copyto(label, k, where=raw[..., k] > top)
            np.maximum(top, raw[..., k], out=top)
        return counts / size, label

    def binary_side(self, sel: np.ndarray, raw: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Two classes: (class 0's vote share (P, n), modal labels (P, n)), without the (P, n, 2)
        arrays `side` builds (the common case, several times faster)."""
        raw0 = (self.raw(sel) if raw is None else raw)[..., 0]
        size = sel.sum(axis=1).astype(np.float32)[:, None]
        label = (size * (self.scale + (self.scale != 1.0)) - raw0 > raw0).astype(np.int64)  # class 1 strictly ahead
        counts = raw0 if self.scale == 1.0 else np.floor(raw0 / self.scale + 1e-3)
        return counts / size, label

    @property
    def binary(self) -> bool:
        return self.task != "multi_label" and self.c == 2

    def raw(self, sel: np.ndarray) -> np.ndarray:
        """The product of the selections (P, M) with the votes, (P, n, C or C-1)."""
        return (sel.astype(np.float32) @ self.votes).reshape(len(sel), self.n, -1)

    def total(self) -> np.ndarray:
        return self.votes.sum(axis=0).reshape(1, self.n, -1)

    def modal(self, sel: np.ndarray) -> np.ndarray:
        return self.side(sel)[1]


def _chunks(votes: Votes, p: int) -> list[slice]:
    step = max(1, CHUNK_ELEMENTS // max(1, votes.n * votes.c))
    return [slice(i, min(p, i + step)) for i in range(0, p, step)]


def pie_shares(votes: Votes, sel_a: np.ndarray, sel_b: np.ndarray) -> np.ndarray:
    """(P,) PIE share between side A's and side B's modal labels, for each row."""
    out = np.empty(len(sel_a))
    for s in _chunks(votes, len(sel_a)):
        if votes.binary:
            out[s] = (votes.binary_side(sel_a[s])[1] != votes.binary_side(sel_b[s])[1]).mean(axis=1)
            continue
        diff = votes.modal(sel_a[s]) != votes.modal(sel_b[s])
        out[s] = (diff.any(axis=-1) if diff.ndim == 3 else diff).mean(axis=1)
    return out


def decisive_weights(votes: Votes, sel_a: np.ndarray, sel_b: np.ndarray, raw_a: np.ndarray | None = None,
                     raw_b: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """((P, n) PIE weights, side A's modal labels): each PIE weighted by how decisively both
    sides voted for their own label: min(A's share for a - A's share for b, B's share for b -
    B's share for a), a and b the two modal labels. 1 for a PIE both sides vote unanimously,
    0 for one a tie decided, 0 for a non-PIE. Multi-label: per differing label, min of the two
    sides' margins |2 share - 1|; the largest. One chunk of rows (callers chunk)."""
    if votes.binary:  # the margin of a side's own label over the other is |2 share - 1|
        (va, la), (vb, lb) = votes.binary_side(sel_a, raw_a), votes.binary_side(sel_b, raw_b)
        return np.minimum(np.abs(2 * va - 1), np.abs(2 * vb - 1)) * (la != lb), la
    (va, la), (vb, lb) = votes.side(sel_a, raw_a), votes.side(sel_b, raw_b)
    if votes.task == "multi_label":
        return (np.minimum(np.abs(2 * va - 1), np.abs(2 * vb - 1)) * (la != lb)).max(axis=-1), la
    ia, ib = la[..., None], lb[..., None]
    margin_a = np.take_along_axis(va, ia, -1) - np.take_along_axis(va, ib, -1)
    margin_b = np.take_along_axis(vb, ib, -1) - np.take_along_axis(vb, ia, -1)
    return np.minimum(margin_a, margin_b)[..., 0], la  # 0 where a == b


def decisive_pie_shares(votes: Votes, sel_a: np.ndarray, sel_b: np.ndarray) -> np.ndarray:
    """(P,) the PIE share with each PIE weighted as `decisive_weights`."""
    out = np.empty(len(sel_a))
    complement = bool((sel_a ^ sel_b).all())  # B = not A (the floor test): B's product is the total less A's
    total = votes.total() if complement else None
    for s in _chunks(votes, len(sel_a)):
        raw_a = votes.raw(sel_a[s])
        out[s] = decisive_weights(votes, sel_a[s], sel_b[s], raw_a, total - raw_a if complement else None)[0].mean(axis=1)
    return out


def vote_distances(votes: Votes, sel_a: np.ndarray, sel_b: np.ndarray) -> np.ndarray:
    """(P,) mean over examples of the total-variation distance between the sides' vote shares
    (multi-label: the mean over labels of |share on A - share on B|)."""
    out = np.empty(len(sel_a))
    for s in _chunks(votes, len(sel_a)):
        d = np.abs(votes.side(sel_a[s])[0] - votes.side(sel_b[s])[0])
        out[s] = (d.mean(axis=-1) if votes.task == "multi_label" else 0.5 * d.sum(axis=-1)).mean(axis=1)
    return out


STATISTICS = {"decisive_pie_share": decisive_pie_shares, "vote_distance": vote_distances, "pie_share": pie_shares}


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
               statistic: str = "decisive_pie_share") -> dict:
    """Permutation p-value of the group's `statistic` (dense side = the first md models of
    `votes`) against `n_perm` relabelings: (1 + #{T_perm >= T_obs}) / (1 + n_perm)."""
    fn = STATISTICS[statistic]
    obs = np.zeros((1, md + mp), bool)
    obs[0, :md] = True
    t_obs = float(fn(votes, obs, ~obs)[0])
    sel = relabelings(md, mp, pairs, n_perm, np.random.default_rng(seed))
    t = fn(votes, sel, ~sel)
    exceed = int(np.count_nonzero(t >= t_obs - 1e-9))  # equal values count against H0 (float noise)
    # The statistic is blind to a relabeling's mirror image (all pairs swapped, or the sides
    # exchanged at equal sizes): the smallest p any data can give, whatever n_perm.
    configs = 2.0 ** mp if pairs is not None else float(math.comb(md + mp, md))
    return {"p_value": (1 + exceed) / (1 + n_perm), "method": "paired_swap" if pairs is not None else "pooled",
            "statistic": statistic, "observed": t_obs, "null_mean": float(t.mean()),
            "seeds_per_side": int(mp), "n_dense_models": int(md), "n_perm": int(n_perm),
            "min_p": min(1.0, (2.0 if md == mp else 1.0) / configs)}


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
