"""The model-job wing: what makes one dense or pruned model and tracks it (docs/design.md §2).

The job protocol (protocol.py), the orchestration train and prune share (orchestrate.py), the
context a runner passes in, the training loop and its optimizer, DDP, seeds computed together
(stacked or in worker processes), and train's and prune's jobs. Parts are imported by name;
this file imports nothing.
"""
