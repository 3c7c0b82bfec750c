"""Deterministic stratified train/validation/test splits (pure).

Each example's place is decided by a hash of (seed, example_id) within its stratum, not by
a global shuffle: the split is the same on every machine and every pandas version, and
adding one example moves no other example to a different split.
"""

from __future__ import annotations

import hashlib
from collections import Counter

import numpy as np


def _rank_key(seed: int, example_id: str) -> str:
    return hashlib.sha256(f"{seed}:{example_id}".encode("utf-8")).hexdigest()


def stratified_split(
    example_ids: list[str],
    strata: list,
    validation_frac: float,
    test_frac: float,
    seed: int = 0,
) -> np.ndarray:
    """Return an array of 'train' / 'validation' / 'test', one per example.

    Every stratum with at least 3 examples gets at least one example in each split, so
    every class is present everywhere (the quality gate checks this).
    """
    if not (0 < validation_frac < 1 and 0 < test_frac < 1 and validation_frac + test_frac < 1):
        raise ValueError(f"bad split fractions: validation={validation_frac}, test={test_frac}")
    if len(example_ids) != len(strata):
        raise ValueError("example_ids and strata differ in length")
    out = np.empty(len(example_ids), dtype=object)
    by_stratum: dict = {}
    for i, s in enumerate(strata):
        by_stratum.setdefault(s, []).append(i)
    for members in by_stratum.values():
        members.sort(key=lambda i: _rank_key(seed, example_ids[i]))
        n = len(members)
        n_test = int(round(n * test_frac))
        n_val = int(round(n * validation_frac))
        if n >= 3:
            n_test, n_val = max(n_test, 1), max(n_val, 1)
        for rank, i in enumerate(members):
            out[i] = "test" if rank < n_test else "validation" if rank < n_test + n_val else "train"
    return out


def multilabel_strata(label_lists: list[list[int]]) -> list[int]:
    """Stratify a multi-label set by each example's rarest label.

    The rare labels are the ones a plain random split would starve; anchoring on them
    keeps every label in every split.
    """
    freq = Counter(label for labels in label_lists for label in labels)
    return [min(labels, key=lambda l: (freq[l], l)) if labels else -1 for labels in label_lists]


def cover_every_label(split: np.ndarray, label_lists: list[list[int]], example_ids: list[str],
                      seed: int = 0) -> np.ndarray:
    """Move single examples so that every label with 3+ examples appears in every split.

    Stratifying on one label per example cannot promise this for the others: a label that
    is never an example's rarest can miss a small split. For each gap, the mover is taken
    from the split holding the label most often, and only if that leaves none of the
    mover's labels absent from where it came from. Deterministic (hash order).
    """
    split = np.array(split, dtype=object)
    splits = ("train", "validation", "test")
    order = sorted(range(len(example_ids)), key=lambda i: _rank_key(seed, example_ids[i]))
    holders: dict[int, list[int]] = {}
    for i in order:
        for label in label_lists[i]:
            holders.setdefault(label, []).append(i)

    def count(label: int, where: str) -> int:
        return sum(1 for j in holders[label] if split[j] == where)

    for label in sorted(holders):
        if len(holders[label]) < 3:
            continue
        for target in splits:
            if count(label, target):
                continue
            source = max(splits, key=lambda s: (count(label, s), s == "train"))
            for i in holders[label]:
                if split[i] == source and all(count(l, source) > 1 for l in label_lists[i] if l != label):
                    split[i] = target
                    break
    return split


def subsample(df, n: int | None, seed: int = 0):
    """A fixed, seeded subsample of at most `n` rows (all rows if `n` is falsy).

    Fixed on purpose: every seed of a group (and every tuning trial) sees the same examples,
    so the models of a group still differ only in their seed.
    """
    if not n or len(df) <= int(n):
        return df
    return df.sample(n=int(n), random_state=seed).reset_index(drop=True)
