"""The compare wing: per-example predictions in, PIE flags, gates, claims and files out.

pies, stacking, selection and baseline are pure numpy/pandas; predictions is the contract
the jobs write (docs/design.md §3); files is file mode; collect, gate, publish, pie_datasets and
claims serve the `compare` stage; committed, the predictions kept under docs/results/. Imports
nothing itself.
"""
