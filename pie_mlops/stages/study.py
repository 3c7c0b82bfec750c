"""The whole study, one command: materialize -> check -> tune -> train -> prune -> compare -> report.

Two ways to drive the same stage functions with the same params:
- through DVC (`dvc repro`), when the params file is the repo's params.yaml and dvc.yaml is
  there: DVC skips every stage whose deps and params have not changed and records the
  outputs in dvc.lock, so `dvc status` is clean afterwards;
- in this process, stage after stage, for any other params file (a profile) or with
  `use_dvc=False`. MLflow's skip-on-rerun still makes a re-run redo only unfinished
  (group, seed) work.
Either way the data is materialized first: `data/` is tracked by data.dvc, not a stage output.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from pie_mlops.util.errors import PieError
from pie_mlops.util.log import get as get_logger
from pie_mlops.config.params import DEFAULT_PARAMS
from pie_mlops.config.plans import per_arch, resolve

_LOG = get_logger(__name__)


def dvc_applies(params_file: str | Path) -> bool:
    """DVC can run the study only on params.yaml (dvc.yaml reads no other file) in a DVC repo."""
    return (Path(params_file).resolve() == Path(DEFAULT_PARAMS).resolve()
            and Path("dvc.yaml").is_file() and Path(".dvc").is_dir())


def study(params_file: str | Path = DEFAULT_PARAMS, use_dvc: bool | None = None, progress: bool = True,
          echo=None) -> dict:
    """Run the whole study; returns {"timings": {stage: seconds}, "report": path, "via": "dvc"|"process"}.
    `echo`: where compare's closing summary goes (the CLI's click.echo: shown under -q too); None: nowhere."""
    if use_dvc is None:
        use_dvc = dvc_applies(params_file)
    elif use_dvc and not dvc_applies(params_file):
        raise PieError(f"dvc repro reads params.yaml in a DVC repo; {params_file} is not it. Run without "
                       f"--dvc, or copy the profile over params.yaml first")
    timings: dict[str, float] = {}

    def timed(name: str, fn, *args, **kwargs):
        _LOG.info(f"== {name}")  # progress: hidden by -q, which keeps errors and the summaries
        start = time.perf_counter()
        out = fn(*args, **kwargs)
        timings[name] = round(time.perf_counter() - start, 1)
        return out

    from pie_mlops.stages import materialize as m

    timed("materialize", m.materialize, resolve("materialize", params_file), None, progress)
    if use_dvc:
        timed("dvc repro", _dvc_repro)
    else:
        _in_process(params_file, timed, progress, echo)
        from pie_mlops.config.study_dvc import declare
        declare(params_file)  # a profile's own metrics and plots, for `dvc metrics/plots show`
    report = Path(resolve("report", params_file).out) / "index.html"
    return {"timings": timings, "report": str(report), "via": "dvc" if use_dvc else "process"}


def _dvc_repro() -> None:
    exe = shutil.which("dvc") or str(Path(sys.executable).parent / "dvc")
    # The stage commands call `pie-mlops`: the venv's bin must be on PATH for DVC's shell.
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}")
    code = subprocess.call([exe, "repro"], env=env)
    if code != 0:
        raise PieError(f"dvc repro failed (exit {code}); the failing stage's message is above. Fix it and "
                       f"run the same command again: finished stages and (group, seed) runs are kept")


def _in_process(params_file, timed, progress: bool, echo=None) -> None:
    from pie_mlops.stages import check, compare_study, prune, report, train, tune

    shared = resolve("study", params_file)
    # The gate checks what the study reads (every materialized dataset only through DVC, whose
    # check stages cover them all): a profile on one small set is not kept waiting by the others.
    timed("check", check.check, resolve("check", params_file), [shared.dataset], shared.data_dir)
    timed("tune", tune.tune, per_arch("tune", params_file), progress)
    # Each plan is resolved when its stage starts: train and prune take the values tune just wrote.
    timed("train", train.train, per_arch("train", params_file), progress)
    timed("prune", prune.prune, per_arch("prune", params_file), progress)
    timed("compare", compare_study.compare, resolve("compare", params_file), None, progress, echo=echo)
    timed("report", report.report, resolve("report", params_file))


def where_to_look(result: dict) -> str:
    """The closing lines: what was made and how to open it."""
    from pie_mlops.tracking import tracking_uri

    from pie_mlops.scale.claims import redact_url

    uri = tracking_uri()
    # A local store needs a UI started on it; a tracking server already is one.
    ui = (f"mlflow ui --backend-store-uri {uri} --port 5000  then http://127.0.0.1:5000"
          if uri.startswith(("sqlite", "file", "/")) else f"open {redact_url(uri)} in a browser")
    steps = ", ".join(f"{k} {v:.0f} s" for k, v in result["timings"].items())
    return "\n".join([
        f"study finished ({result['via']}): {steps}",
        f"  report:    {result['report']}  (self-contained HTML; open it in a browser)",
        f"  MLflow UI: {ui}",
        "  metrics:   dvc metrics show    curves: dvc plots show",
    ])
