"""A study run outside DVC (a profile, `make tiny`) declares its own metrics and plots to DVC.

dvc.yaml's metrics and plots follow params.yaml (templated paths), so a profile's outputs,
which live apart from the default study's, would be invisible to `dvc metrics show` and
`dvc plots show`. After such a run, `<root>/dvc.yaml` (root: the folder holding the profile's
`report.compare_root` and `report.out`, e.g. reports/tiny/) declares them: top-level metrics
and plots only, no stage, so `dvc status` and `dvc repro` are untouched. It is rewritten on
each run from what is on disk, and lives in a gitignored folder beside the outputs it names.
"""

from __future__ import annotations

import csv
import os
from pathlib import Path

import yaml

from pie_mlops.config.params import DEFAULT_PARAMS
from pie_mlops.config.plans import resolve


def declare(params_file: str | Path) -> Path | None:
    """Write the declarations; return the dvc.yaml written, or None when there is nothing to do
    (no DVC project here, or the outputs are the default study's, which dvc.yaml declares)."""
    if not (Path("dvc.yaml").is_file() and Path(".dvc").is_dir()):
        return None
    report, dataset = resolve("report", params_file), resolve("study", params_file).dataset
    compare_root, out = Path(report.compare_root), Path(report.out)
    root = Path(os.path.commonpath([compare_root.resolve(), out.resolve()]))
    here = Path.cwd().resolve()
    if root == here or here not in root.parents:
        return None  # outputs at the top level or outside the project: not a profile's own folder
    default = resolve("report", DEFAULT_PARAMS)  # the schema's defaults where there is no params.yaml
    if any(root == Path(p).resolve() or root in Path(p).resolve().parents for p in default.model_dump().values()):
        return None  # these are the default study's outputs: dvc.yaml already declares them
    rel = lambda p: Path(os.path.relpath(Path(p).resolve(), root)).as_posix()  # noqa: E731
    metrics, plots = [], []
    for arch_dir in sorted(p for p in (compare_root / dataset).glob("*") if (p / "summary.json").is_file()):
        metrics.append(rel(arch_dir / "summary.json"))
        for name, what in (("pie_share.csv", "PIE share"), ("pruned_acc_pie.csv", "pruned accuracy on PIEs")):
            table = arch_dir / "plots" / name
            columns = _columns(table)
            if columns:
                plots.append({f"{arch_dir.name} {what} against sparsity": {
                    "template": "linear", "x": "sparsity", "y": {rel(table): columns}}})
    if (out / "figures").is_dir():
        plots.append(rel(out / "figures"))
    path = root / "dvc.yaml"
    text = ("# Written by `pie-mlops study` for a run outside DVC (pie_mlops/config/study_dvc.py): this\n"
            "# profile's metrics and plots, for `dvc metrics show` and `dvc plots show`. No stages.\n"
            + yaml.safe_dump({"metrics": metrics, "plots": plots}, sort_keys=False))
    from pie_mlops.util.atomic import write_text

    write_text(path, text)
    return path


def _columns(table: Path) -> list[str]:
    """The method columns of a wide plot table (every column but `sparsity`)."""
    if not table.is_file():
        return []
    with table.open(encoding="utf-8", newline="") as f:
        header = next(csv.reader(f), [])
    return [c for c in header if c != "sparsity"]
