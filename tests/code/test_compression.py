"""Quantized group names and the pruning-vs-quantization table (issue 31), pure."""

from __future__ import annotations

import math

import pytest

from pie_mlops.analysis.compression import compression_table
from pie_mlops.util.errors import PieError
from pie_mlops.report.plot_tables import method_of, sparsity_of
from pie_mlops.config.vocabulary import QUANT_METHODS, check_name, compression_of, is_paper_group


def test_quantized_groups_are_named_and_never_the_papers():
    for method in QUANT_METHODS:
        group = f"quant-{method}"
        assert check_name("group", group) == group
        assert compression_of(group) == "quantization" and not is_paper_group(group)
        assert method_of(group) == group and math.isnan(sparsity_of(group))
    assert compression_of("dense") == "dense" and compression_of("magnitude-os@0.50") == "pruning"
    assert is_paper_group("magnitude-ft-layer@0.50") and is_paper_group("random-ai-layer@0.90")
    assert not is_paper_group("magnitude-ft@0.50")  # the global threshold is ours
    assert not is_paper_group("magnitude-os@0.50") and not is_paper_group("dense")
    for bad in ("quant-int4", "quant-", "quant-int8-dyn/../x", "quant-bf16@0.5"):
        with pytest.raises(PieError, match="quant-<method>"):
            check_name("group", bad, "a file")


def _summary(share: float, acc: float) -> dict:
    return {"pie_share": share, "pie_share_ci": [share - 0.01, share + 0.01], "n_pies": int(share * 1000),
            "pruned_acc_all": acc, "dense_acc_all": 0.8, "pruned_acc_pie": 0.2, "dense_acc_pie": 0.8,
            "pruned_acc_nonpie": 0.8, "collapsed": False}


def test_each_quantized_group_meets_the_nearest_pruned_group_in_size_and_in_latency():
    summary = {"noise_floor": {"share": 0.01}, "magnitude-os@0.50": {**_summary(0.05, 0.78), "sparsity": 0.5},
               "magnitude-os@0.90": {**_summary(0.20, 0.60), "sparsity": 0.9},
               "random-os@0.90": {**_summary(0.40, 0.50), "sparsity": 0.9, "collapsed": True},
               "quant-int8-dyn": {**_summary(0.02, 0.79), "sparsity": None}}
    metrics = {"magnitude-os@0.50": (45.0, 30.0), "magnitude-os@0.90": (10.0, 29.0), "random-os@0.90": (22.0, 18.0),
               "quant-int8-dyn": (22.0, 18.0)}
    runs = [{"group": g, "seed": s, "metrics": {"model_mb": mb + s, "latency_ms": ms,
                                                **({"dense_mb": 86.0, "dense_latency_ms": 36.0} if "quant" in g else {})}}
            for g, (mb, ms) in metrics.items() for s in (0, 1)]
    table = compression_table(summary, runs)
    assert table["dense"] == {"model_mb": 86.0, "latency_ms": 36.0}
    q = table["groups"]["quant-int8-dyn"]
    assert q["compression"] == "quantization" and q["method"] == "int8-dyn" and q["bits"] == 8
    assert q["model_mb"] == 22.5 and q["size_ratio"] == pytest.approx(86 / 22.5) and q["latency_ratio"] == 2.0
    assert table["groups"]["magnitude-os@0.50"]["sparsity"] == 0.5 and "noise_floor" not in table["groups"]
    # the collapsed random group is nearest in both, but never a match; 10.5 MB is nearer than 45.5
    by_axis = {m["matched_on"]: m for m in table["matched"]}
    assert by_axis["model_mb"]["pruned"] == "magnitude-os@0.90"
    assert by_axis["latency_ms"]["pruned"] == "magnitude-os@0.90"  # 29 ms against 30 ms
    assert by_axis["model_mb"]["quantized_pie_share"] == 0.02 and by_axis["model_mb"]["pruned_pie_share"] == 0.20


def test_without_run_metrics_the_table_has_no_sizes_and_no_matches():
    table = compression_table({"quant-bf16": _summary(0.01, 0.8), "magnitude-os@0.50": _summary(0.05, 0.7)}, [])
    assert table["dense"] == {"model_mb": None, "latency_ms": None}
    assert table["groups"]["quant-bf16"]["model_mb"] is None and table["groups"]["quant-bf16"]["size_ratio"] is None
    assert table["matched"] == []


def test_paired_flips_count_each_model_against_the_dense_model_of_its_own_seed():
    import numpy as np

    from pie_mlops.analysis.compression import paired_flips

    rng = np.random.default_rng(0)
    dense = rng.integers(0, 3, (4, 1000))  # dense seeds 0..3
    group = dense[[2, 0]].copy()  # the group's seeds 2 and 0, compressed from those dense models
    group[0, :30] = (group[0, :30] + 1) % 3  # seed 2 flips 30 examples, seed 0 flips 10
    group[1, 500:510] = (group[1, 500:510] + 2) % 3
    out = paired_flips(dense, [0, 1, 2, 3], group, [2, 0], n_boot=300)
    assert out["flips_per_seed"] == [30, 10] and out["paired_seeds"] == 2
    assert out["flip_share"] == 0.02 and out["flip_share_ci"][0] < 0.02 < out["flip_share_ci"][1]
    # the other seeds' dense models disagree with these by chance (2/3 of examples): never compared
    assert paired_flips(dense, [0, 1], group, [5, 6]) is None
    multi = rng.integers(0, 2, (2, 200, 4))
    other = multi.copy()
    other[1, :7, 3] ^= 1  # seed 1: one label of 7 examples
    assert paired_flips(multi, [0, 1], other, [0, 1])["flips_per_seed"] == [0, 7]
