"""The great-expectations project: a file-backed GX context in `gx/` (GX's own layout).

Each gate is a named Checkpoint over named suites, saved in the project:
- `<dataset>.data`: the data gate (pie_mlops/data/quality.py), suites `<dataset>.data.<frame>`;
- `<dataset>.<arch>.predictions`: the prediction gate (prediction_quality.py).

The frames a gate validates are staged as Parquet files in `gx/uncommitted/frames/<checkpoint>/`
and read by a pandas-filesystem data source, so one Checkpoint validates them all (a
dataframe asset would pass one dataframe to every validation) and the checkpoint can be
run again from GX alone: `gx.get_context(mode="file").checkpoints.get("rotten_tomatoes.data").run()`.

Every result stays in GX's validation store (`gx/uncommitted/validations/`, the last
KEEP_RUNS runs per checkpoint), so Data Docs keep the history across runs. GX's pages load
Bootstrap, jQuery and their table plugin from CDNs, and its index is a table filled by that
JavaScript; the copy written beside each report (`<report>/data_docs/`) therefore has its
own index (report/templates/gx_index.html.j2), the pages without their CDN tags and a
local stylesheet: it renders offline.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from datetime import datetime, timezone
from pathlib import Path

GX_DIR = "gx"  # GX's own name for a file project, under the project root
SITE = "local_site"  # the file context's default Data Docs site (gx/uncommitted/data_docs/local_site)
KEEP_RUNS = 30  # runs of one checkpoint kept in the store and its Data Docs
_EXTERNAL = re.compile(r'<script[^>]*\ssrc="https?://[^"]*"[^>]*>\s*</script>|<link[^>]*\shref="https?://[^"]*"[^>]*>',
                       re.IGNORECASE)
_REMOTE_IMG = re.compile(r'(<img[^>]*\ssrc=)"https?://[^"]*"', re.IGNORECASE)  # GX's logo, with a tracking query
_REMOTE_URL = re.compile(r"url\(['\"]?https?://[^)]*\)", re.IGNORECASE)


def open_context(root: Path):
    """The file context of `root/gx/` (created on first use)."""
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")  # a data gate makes no network calls
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    Path(root).mkdir(parents=True, exist_ok=True)
    context = gx.get_context(mode="file", project_root_dir=str(Path(root).resolve()))
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    return context


def _batch(context, checkpoint: str, frame: str, folder: Path):
    """The batch definition that reads `folder/<frame>.parquet` (data source per checkpoint)."""
    sources = context.data_sources
    try:
        source = sources.get(checkpoint)
    except (KeyError, LookupError, ValueError):
        source = sources.add_pandas_filesystem(checkpoint, base_directory=folder)
    try:
        asset = source.get_asset(frame)
    except LookupError:
        asset = source.add_parquet_asset(frame)
    try:
        return asset.get_batch_definition(frame)
    except (KeyError, LookupError, ValueError):
        return asset.add_batch_definition_path(frame, f"{frame}.parquet")


def run_checkpoint(root: Path, checkpoint: str, frames: dict, checks: list, docs_dir: Path,
                   sample_ids: int) -> tuple[list, bool]:
    """Save the suites and the Checkpoint `checkpoint`, run it over `frames`, and write its
    offline Data Docs (every kept run) into `docs_dir`. Returns the GX result of each check
    (in `checks` order) and the gate's verdict (no critical expectation failed)."""
    import great_expectations as gx
    import great_expectations.expectations as gxe
    from great_expectations.core.run_identifier import RunIdentifier
    from great_expectations.data_context.types.resource_identifiers import ExpectationSuiteIdentifier
    from great_expectations.expectations.metadata_types import FailureSeverity

    context = open_context(root)
    folder = Path(root).resolve() / GX_DIR / "uncommitted" / "frames" / checkpoint
    folder.mkdir(parents=True, exist_ok=True)
    definitions = []
    for frame in dict.fromkeys(c.frame for c in checks):
        frames[frame].to_parquet(folder / f"{frame}.parquet")  # the index (example ids) round-trips
        suite = context.suites.add_or_update(gx.ExpectationSuite(
            name=f"{checkpoint}.{frame}",
            expectations=[getattr(gxe, c.expectation)(**c.kwargs, severity=c.severity, meta={"check": c.name})
                          for c in checks if c.frame == frame]))
        definitions.append(context.validation_definitions.add_or_update(gx.ValidationDefinition(
            name=f"{checkpoint}.{frame}", data=_batch(context, checkpoint, frame, folder), suite=suite)))
    saved = context.checkpoints.add_or_update(gx.Checkpoint(
        name=checkpoint, validation_definitions=definitions,
        result_format={"result_format": "SUMMARY", "partial_unexpected_count": sample_ids}))
    # No UpdateDataDocsAction: it rebuilds the site once per suite (~1.3 s each); the pages
    # of this run are built once below (after a rerun from GX: context.build_data_docs()).
    # An explicit run_time, or GX tries to parse the run name as a date.
    outcome = saved.run(run_id=RunIdentifier(run_name=checkpoint, run_time=datetime.now(timezone.utc)))
    context.build_data_docs(site_names=[SITE], resource_identifiers=[
        *outcome.run_results, *(ExpectationSuiteIdentifier(d.suite.name) for d in definitions)])
    by_name, gate_ok = {}, True
    for result in outcome.run_results.values():
        gate_ok &= result.get_max_severity_failure() != FailureSeverity.CRITICAL
        by_name.update({r.expectation_config.meta["check"]: r for r in result.results})
    _keep_last(root, checkpoint)
    write_docs(root, checkpoint, docs_dir)
    return [by_name[c.name] for c in checks], gate_ok


def _runs(base: Path) -> list[Path]:
    """Run directories (<run name>/<run time>) under one suite's folder, oldest first."""
    return sorted((p for p in base.glob("*/*") if p.is_dir()), key=lambda p: p.name)


def _keep_last(root: Path, checkpoint: str) -> None:
    """Drop all but the newest KEEP_RUNS runs of the checkpoint's suites, results and pages."""
    gx_dir = Path(root).resolve() / GX_DIR / "uncommitted"
    prefix = Path(*checkpoint.split("."))
    for tree in (gx_dir / "validations", gx_dir / "data_docs" / SITE / "validations"):
        for suite in (tree / prefix).glob("*") if (tree / prefix).is_dir() else []:
            for old in _runs(suite)[:-KEEP_RUNS]:
                shutil.rmtree(old, ignore_errors=True)


def _offline(html: str, depth: int) -> str:
    """A GX page that fetches nothing from the network: no CDN tags, the logo from static/,
    styled by the local stylesheet."""
    up = "../" * depth
    html = _REMOTE_IMG.sub(rf'\1"{up}static/images/logo-long.png"', _EXTERNAL.sub("", html))
    html = _REMOTE_URL.sub("none", html)
    return html.replace("</head>", f'<link rel="stylesheet" href="{up}static/styles/pie_offline.css"></head>', 1)


def write_docs(root: Path, checkpoint: str, docs_dir: Path) -> None:
    """This checkpoint's Data Docs, offline, into `docs_dir` (replaced)."""
    from pie_mlops.report.data_check import OFFLINE_CSS, render_docs_index

    uncommitted = Path(root).resolve() / GX_DIR / "uncommitted"
    site, prefix = uncommitted / "data_docs" / SITE, Path(*checkpoint.split("."))
    docs_dir = Path(docs_dir)
    if docs_dir.exists():
        shutil.rmtree(docs_dir)
    for part in ("validations", "expectations"):
        if (site / part / prefix).is_dir():
            shutil.copytree(site / part / prefix, docs_dir / part / prefix)
    if (site / "static").is_dir():
        shutil.copytree(site / "static", docs_dir / "static")
    (docs_dir / "static" / "styles").mkdir(parents=True, exist_ok=True)
    (docs_dir / "static" / "styles" / "pie_offline.css").write_text(OFFLINE_CSS, encoding="utf-8")
    for page in docs_dir.rglob("*.html"):
        depth = len(page.relative_to(docs_dir).parts) - 1
        page.write_text(_offline(page.read_text(encoding="utf-8"), depth), encoding="utf-8")
    rows = []
    for result in (uncommitted / "validations" / prefix).rglob("*.json"):
        data = json.loads(result.read_text(encoding="utf-8"))
        rel = result.relative_to(uncommitted / "validations")
        page = Path("validations") / rel.with_suffix(".html")
        stats = data.get("statistics") or {}
        rows.append({"suite": data.get("suite_name") or ".".join(rel.parts[:-3]),
                     "run_time": rel.parts[-2], "success": bool(data.get("success")),
                     "evaluated": stats.get("evaluated_expectations"), "passed": stats.get("successful_expectations"),
                     "page": page.as_posix() if (docs_dir / page).is_file() else None,
                     "suite_page": (Path("expectations") / rel.parent.parent.parent).with_suffix(".html").as_posix()})
    rows.sort(key=lambda r: (r["run_time"], r["suite"]), reverse=True)
    (docs_dir / "index.html").write_text(render_docs_index(checkpoint, rows, KEEP_RUNS), encoding="utf-8")
