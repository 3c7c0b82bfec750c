"""Pruning, pure tensor code: criteria (which weights, their scores), masks (one-pass exact
keep-masks), schedules (ft, wr, ai, os), structured head/FFN surgery, and apply (one plan -> one
pruned model, no files, no MLflow)."""
