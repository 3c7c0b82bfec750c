from collections import Counter

import pytest

from pie_mlops.data.splits import multilabel_strata, stratified_split


def _ids(n):
    return [f"x-{i:05d}" for i in range(n)]


def test_split_fractions_per_class_and_every_class_everywhere():
    ids = _ids(1000)
    strata = [0] * 900 + [1] * 95 + [2] * 5
    split = stratified_split(ids, strata, 0.1, 0.2, seed=0)
    for cls, n in [(0, 900), (1, 95), (2, 5)]:
        counts = Counter(s for s, c in zip(split, strata) if c == cls)
        assert set(counts) == {"train", "validation", "test"}
        assert counts["test"] == max(1, round(n * 0.2))
    assert Counter(split)["test"] == 180 + 19 + 1


def test_split_is_deterministic_and_seeded():
    ids, strata = _ids(300), [i % 3 for i in range(300)]
    a = stratified_split(ids, strata, 0.1, 0.2, seed=0)
    assert list(a) == list(stratified_split(ids, strata, 0.1, 0.2, seed=0))
    assert list(a) != list(stratified_split(ids, strata, 0.1, 0.2, seed=1))


def test_split_does_not_depend_on_row_order():
    ids, strata = _ids(200), [i % 2 for i in range(200)]
    a = dict(zip(ids, stratified_split(ids, strata, 0.1, 0.2)))
    b = dict(zip(ids[::-1], stratified_split(ids[::-1], strata[::-1], 0.1, 0.2)))
    assert a == b


def test_split_rejects_bad_fractions():
    with pytest.raises(ValueError):
        stratified_split(_ids(3), [0, 0, 0], 0.5, 0.6)


def test_multilabel_strata_anchor_on_rarest_label():
    labels = [[0], [0, 1], [0, 2], [0]]
    assert multilabel_strata(labels) == [0, 1, 2, 0]


def test_cover_every_label_fills_gaps_in_small_multilabel_sets():
    from pie_mlops.data.splits import cover_every_label

    # 60 rows, four equally common labels: stratifying on one label per row can starve one.
    label_lists = [[i % 4, (i + 1) % 4] for i in range(60)]
    ids = _ids(60)
    split = stratified_split(ids, multilabel_strata(label_lists), 0.1, 0.2, seed=0)
    fixed = cover_every_label(split, label_lists, ids, seed=0)
    for label in range(4):
        assert {s for s, ls in zip(fixed, label_lists) if label in ls} == {"train", "validation", "test"}
    assert list(fixed) == list(cover_every_label(split, label_lists, ids, seed=0))
