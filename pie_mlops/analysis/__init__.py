"""Analyses of PIEs: who they are and how much to trust the PIE set. Pure numpy/pandas/scipy.

- `el2n`: EL2N scores (Paul et al. 2021), percentile bins, the loss-ratio/PIE-share table, top-q enrichment.
- `classes`: PIE class distribution vs the data's (chi-square), per-class dense/pruned accuracy.
- `complexity`: per-text length, readability (textstat, kept offline) and lexical diversity; PIE vs non-PIE.
- `stability`: PIE-set stability over seeds, the dense-vs-dense noise floor, Jaccard overlap of PIE sets.
- `stats`: shared helpers (percentile intervals, Mann-Whitney with Cliff's delta, Holm, Jaccard).

No module here reads files or talks to MLflow: callers pass arrays; modal labels (the real
rule lives in `pie_mlops.compare.pies`) come from there, never re-implemented.
"""
