"""Plots and HTML reports (pure rendering: data in, HTML text out)."""
