"""Pruning, pure tensor code: criteria (scores, one-pass exact masks), schedules (ft, wr, ai, os),
structured head/FFN surgery, and apply (one plan -> one pruned model, no files, no MLflow)."""
