"""One module per pipeline stage; the CLI, dvc.yaml and MLproject call the same function."""
