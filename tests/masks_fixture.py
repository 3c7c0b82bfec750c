"""Helpers shared by the mask and criteria tests (tests/code/test_masks.py, test_criteria.py)."""


def pruned_set(masks: dict) -> set:
    return {(name, i) for name, keep in masks.items() for i in (~keep).reshape(-1).nonzero().view(-1).tolist()}


def n_pruned(masks: dict) -> int:
    return sum(int((~keep).sum()) for keep in masks.values())
