"""Pruning: pure tensor code, no I/O and no MLflow. `criteria` scores single weights (magnitude,
impact, random) and selects exact keep-masks (global or per-layer thresholds), `schedules` drives
them through training (ft, wr, ai, os), `structured` cuts whole heads and FFN neurons out, and
`apply` wires one plan to the training loop. Submodules are imported where they are needed, so
importing this package stays cheap.
"""
