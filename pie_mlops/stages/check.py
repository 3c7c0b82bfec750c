"""Stage `check`: the great-expectations data-quality gate over datasets (params: check.*)."""

from __future__ import annotations

from pathlib import Path

from pie_mlops.util.errors import DataQualityError, PieError
from pie_mlops.config.schema import Check
from pie_mlops.util.log import get as get_logger
from pie_mlops.util.log import progress_disabled

_LOG = get_logger(__name__)

def resolve_names(names: list[str], data_dir: str | Path) -> list[str]:
    """`all` means every dataset under data_dir (a folder holding meta.json), sorted.

    Every name is checked before any dataset is validated, so a typo fails at once.
    """
    from pie_mlops.config.vocabulary import check_name

    root = Path(data_dir)
    for name in names:  # a name, never a path: it becomes data/<name> and reports/.../<name>
        if name != "all":
            check_name("dataset", name, "check")
    if "all" in names:
        # Hidden folders are write_dataset's temporary and backup copies, not datasets.
        found = sorted(p.parent.name for p in root.glob("*/meta.json") if not p.parent.name.startswith("."))
        if not found:
            raise PieError(f"{root}: no datasets (no */meta.json); run `pie-mlops materialize` "
                           f"or `pie-mlops import`, or pass --data-dir")
        return found
    for name in names:
        if not (root / name / "meta.json").is_file():
            raise PieError(f"{root / name}: no dataset here (no meta.json); write it with "
                           f"`pie-mlops materialize --dataset {name}` or `pie-mlops import ... --name {name}`")
    return list(dict.fromkeys(names))


def format_table(summary: dict) -> str:
    """A short console table: one line per expectation, failures and warnings marked."""
    verdict = "passed" if summary["success"] else "FAILED"
    lines = [f"{summary['dataset']}: {verdict} ({summary['n_checks']} checks, "
             f"{summary['n_failed']} failed, {summary['n_warnings']} warning(s))"]
    width = max(len(c["name"]) for c in summary["checks"])
    for c in summary["checks"]:
        status = "ok" if c["success"] else ("FAILED" if c["severity"] == "critical" else "warn")
        if c["unexpected_count"] is not None:
            detail = f"{c['unexpected_count']}/{c['element_count']} unexpected"
        else:
            detail = f"observed {c['observed']}" if c["observed"] is not None else ""
        if c["error"]:
            detail = f"error: {c['error']}"
        if c["sample_ids"] and not c["success"]:
            detail += f"  e.g. {', '.join(c['sample_ids'])}"
        lines.append(f"  {c['name']:<{width}}  {status:<6}  {detail}".rstrip())
    return "\n".join(lines)


def _failure_message(summaries: list[dict]) -> str:
    parts = []
    for s in summaries:
        for c in s["checks"]:
            if not c["success"] and c["severity"] == "critical":
                count = f"{c['unexpected_count']} unexpected" if c["unexpected_count"] is not None else "failed"
                ids = f" (e.g. {', '.join(c['sample_ids'])})" if c["sample_ids"] else ""
                error = f" [{c['error']}]" if c["error"] else ""
                parts.append(f"{s['dataset']}/{c['name']}: {count}{ids}{error}")
    return "data-quality gate failed: " + "; ".join(parts)


def check(plan: Check, names: list[str], data_dir: str) -> list[dict]:
    """Validate each dataset into `<report_dir>/<name>/`; raise DataQualityError if any failed.

    Every dataset is validated (and reported) before the gate decides, so one run shows
    all the problems. Reports are logged to MLflow only when a run is active.
    """
    from tqdm.auto import tqdm

    from pie_mlops.util.atomic import write_text
    from pie_mlops.data.quality import validate_dataset
    from pie_mlops.report.data_check import render_check_html
    from pie_mlops.tracking import log_artifacts_if_active

    report_root, params = Path(plan.report_dir), plan.model_dump()
    summaries = []
    for name in (bar := tqdm(resolve_names(names, data_dir), desc="check", unit="dataset", disable=progress_disabled())):
        bar.set_postfix_str(name)
        out = report_root / name
        summary = validate_dataset(Path(data_dir) / name, out, params)
        head, *table = format_table(summary).splitlines()
        _LOG.info(head)  # the verdict; the expectation table under -v, or at once when it failed
        for line in table:
            (_LOG.info if not summary["success"] else _LOG.debug)(line)
        write_text(out / "summary.html", render_check_html(summary))
        log_artifacts_if_active([out / "result.json", out / "summary.html", out / "data_docs"],
                                artifact_path=f"data_checks/{name}")
        summaries.append(summary)
    if not all(s["success"] for s in summaries):
        raise DataQualityError(_failure_message(summaries))
    return summaries
