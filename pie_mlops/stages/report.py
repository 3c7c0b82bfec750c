"""Stage `report` (params: report.*): one self-contained HTML page over every comparison.

`pie-mlops compare` writes a report per (dataset, arch) into its own directory; this stage
gathers all of them (every `<compare_root>/<dataset>/<arch>/`) into `<out>/index.html`, with
each figure also saved under `<out>/figures/` for the MLflow UI and DVC.
"""

from __future__ import annotations

from pathlib import Path

from pie_mlops.report.build import build_report
from pie_mlops.config.schema import Report


def report(plan: Report) -> Path:
    return build_report(Path(plan.compare_root), Path(plan.out))
