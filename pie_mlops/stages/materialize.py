"""Stage `materialize`: write the offline and synthetic datasets under data/ (params: materialize.*)."""

from __future__ import annotations

from pathlib import Path

from pie_mlops.errors import PieError
from pie_mlops.schema import defaults

DEFAULTS = defaults("materialize")  # pie_mlops/schema.py: the one source of defaults and types


def available() -> list[str]:
    from pie_mlops.data.sources import OFFLINE_CORPORA
    from pie_mlops.data.synthetic import SYNTHETIC

    return [*OFFLINE_CORPORA, *SYNTHETIC]


def materialize(params: dict, datasets: list[str] | None = None, progress: bool = True) -> list[Path]:
    """Write each dataset per the contract; returns the dataset directories.

    The output is byte-deterministic, so a re-run on any machine leaves `dvc status` clean
    (after `sync_dvc_cache` fills the DVC cache, which a fresh clone lacks).
    """
    from tqdm.auto import tqdm

    from pie_mlops.data.build import build_dataset
    from pie_mlops.data.sources import OFFLINE_CORPORA
    from pie_mlops.data.synthetic import SYNTHETIC, SYNTHETIC_LICENSE

    names = datasets or list(params["datasets"])
    unknown = [n for n in names if n not in available()]
    if unknown:
        raise PieError(f"unknown dataset(s) {', '.join(unknown)}; choose from {', '.join(available())} or all")
    split = {k: params[k] for k in ("validation_frac", "test_frac", "seed")}
    written = []
    for name in tqdm(names, desc="materialize", unit="dataset", disable=not progress):
        if name in OFFLINE_CORPORA:
            corpus = OFFLINE_CORPORA[name]()
            path = build_dataset(
                corpus.frame, root=params["data_dir"], name=name, task="single_label",
                label_names=corpus.label_names, id_prefix=corpus.id_prefix, source=corpus.source,
                license=corpus.license, synthetic=False, **split,
            )
        else:
            task, make = SYNTHETIC[name]
            frame, label_names = make()
            path = build_dataset(
                frame, root=params["data_dir"], name=name, task=task, label_names=label_names,
                id_prefix=name.split("_", 1)[1], source=f"pie_mlops.data.synthetic.{make.__name__}",
                license=SYNTHETIC_LICENSE, synthetic=True, **split,
            )
        written.append(path)
    _report_dvc_state(params["data_dir"])
    return written


def _report_dvc_state(data_dir: str) -> None:
    from pie_mlops.versioning import sync_dvc_cache

    state = sync_dvc_cache(data_dir)
    if state in ("cached", "up to date"):
        print(f"{data_dir}/ matches {data_dir}.dvc ({state}): `dvc status` is clean")
    elif state == "differs":
        print(f"{data_dir}/ differs from {data_dir}.dvc: record the new version with "
              f"`dvc add {data_dir}` and commit {data_dir}.dvc")
