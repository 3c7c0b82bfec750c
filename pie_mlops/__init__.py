"""pie-mlops: find the examples that pruning breaks (PIEs), as a tracked pipeline."""

__version__ = "0.1.0"
