"""Datasets: offline sources, imports, splits and the data-quality gate."""
