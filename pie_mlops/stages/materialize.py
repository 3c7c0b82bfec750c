"""Stage `materialize`: write the offline and synthetic datasets under data/ (params: materialize.*)."""

from __future__ import annotations

from pathlib import Path

from pie_mlops.util.errors import PieError
from pie_mlops.config.vocabulary import check_name
from pie_mlops.config.schema import Materialize
from pie_mlops.util.log import progress_disabled
from pie_mlops.util.log import get as get_logger

_LOG = get_logger(__name__)

def available() -> list[str]:
    from pie_mlops.data.sources import OFFLINE_CORPORA
    from pie_mlops.data.synthetic import SYNTHETIC

    return [*OFFLINE_CORPORA, *SYNTHETIC]


def materialize(plan: Materialize, datasets: list[str] | None = None, progress: bool = True,
                overwrite: bool = False) -> list[Path]:
    """Write each dataset per the contract; returns the dataset directories.

    The output is byte-deterministic, so a re-run on any machine leaves `dvc status` clean
    (after `sync_dvc_cache` fills the DVC cache, which a fresh clone lacks). A dataset of
    another origin under a packaged name (a user import) is replaced only with `overwrite`;
    every one is checked before anything is written.
    """
    from tqdm.auto import tqdm

    from pie_mlops.data.build import build_dataset

    names = [check_name("dataset", n, "materialize --dataset") for n in datasets or plan.datasets]
    unknown = [n for n in names if n not in available()]
    if unknown:
        raise PieError(f"unknown dataset(s) {', '.join(unknown)}; choose from {', '.join(available())} or all")
    split = {k: getattr(plan, k) for k in ("validation_frac", "test_frac", "seed")}
    sources = [_plan(name) for name in tqdm(names, desc="read sources", unit="dataset", disable=progress_disabled(progress))]
    if not overwrite:
        for source in sources:
            _keep_foreign(Path(plan.data_dir) / source["name"], source["source"])
    written = []
    for source in sources:
        frame = source.pop("frame")
        written.append(build_dataset(frame, root=plan.data_dir, **source, **split))
    _report_dvc_state(plan.data_dir)
    return written


def _plan(name: str) -> dict:
    """build_dataset's arguments (and the frame) for one packaged dataset."""
    from pie_mlops.data.sources import OFFLINE_CORPORA
    from pie_mlops.data.synthetic import SYNTHETIC, SYNTHETIC_LICENSE

    if name in OFFLINE_CORPORA:
        corpus = OFFLINE_CORPORA[name]()
        return {"frame": corpus.frame, "name": name, "task": "single_label", "label_names": corpus.label_names,
                "id_prefix": corpus.id_prefix, "source": corpus.source, "license": corpus.license,
                "synthetic": False}
    task, make = SYNTHETIC[name]
    frame, label_names = make()
    return {"frame": frame, "name": name, "task": task, "label_names": label_names,
            "id_prefix": name.split("_", 1)[1], "source": f"pie_mlops.data.synthetic.{make.__name__}",
            "license": SYNTHETIC_LICENSE, "synthetic": True}


def _keep_foreign(path: Path, source: str) -> None:
    """PieError if data/<name>/ holds a dataset from another source (a user import)."""
    import json

    meta = path / "meta.json"
    if not meta.is_file():
        return
    try:
        found = json.loads(meta.read_text(encoding="utf-8")).get("source")
    except (OSError, ValueError, AttributeError):
        found = "(unreadable meta.json)"
    if found != source:
        raise PieError(f"{path}: holds a dataset from {found}, not the packaged {path.name}; "
                       f"pass --overwrite to replace it, or import yours under another name")


def _report_dvc_state(data_dir: str) -> None:
    from pie_mlops.util.versioning import sync_dvc_cache

    state = sync_dvc_cache(data_dir)
    if state in ("cached", "up to date"):
        _LOG.info(f"{data_dir}/ matches {data_dir}.dvc ({state}): `dvc status` is clean")
    elif state == "differs":
        _LOG.warning(f"{data_dir}/ differs from {data_dir}.dvc, which is left as it is: `pie-mlops materialize` "
              f"(every dataset) restores the committed version; to record this one, `dvc add {data_dir}` "
              f"and commit {data_dir}.dvc")
