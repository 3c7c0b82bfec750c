"""The long and wide CSV tables that `dvc plots show` draws (dvc.yaml's top-level plots), from
a comparison's summary and analysis; and the group-name helpers the plots share."""

from __future__ import annotations

from pathlib import Path

import pandas as pd


def sparsity_of(group: str) -> float:
    """A group's target sparsity: 0.0 for dense (no `@`), NaN when what follows `@` is no number
    or for a quantized group (quant-<method>: no weight is removed, its size is what shrinks)."""
    if group.startswith("quant-"):
        return float("nan")
    try:
        return float(group.rsplit("@", 1)[1]) if "@" in group else 0.0
    except ValueError:
        return float("nan")


def method_of(group: str) -> str:
    """`magnitude-os@0.50` -> `magnitude-os`: one line per method in the plots; `quant-int8-dyn` stays
    itself (vocabulary.compression_of tells pruning from quantization, is_paper_group the paper's)."""
    return group.rsplit("@", 1)[0]


def write_plot_tables(summary: dict, analysis: dict, arch: str, root: Path) -> None:
    """Long CSVs that `dvc plots show` draws (dvc.yaml's top-level plots)."""
    root.mkdir(parents=True, exist_ok=True)
    acc, counts = [], []
    floor = analysis.get("noise_floor", {})
    for group, s in sorted(summary.items(), key=lambda kv: (method_of(kv[0]), sparsity_of(kv[0]))):
        base = {"arch": arch, "method": method_of(group), "sparsity": sparsity_of(group)}
        for subset in ("all", "pie", "nonpie"):
            acc.append({**base, "subset": subset, "dense_acc": s.get(f"dense_acc_{subset}"),
                        "pruned_acc": s.get(f"pruned_acc_{subset}")})
        counts.append({**base, "n_pies": s["n_pies"], "pie_share": s["pie_share"],
                       "floor_share": floor.get("floor_share")})
    pd.DataFrame(acc).to_csv(root / "accuracy.csv", index=False)
    pd.DataFrame(counts).to_csv(root / "pies.csv", index=False)
    # Wide copies (sparsity x method) so each method is one line in `dvc plots show`.
    wide = pd.DataFrame(counts)
    if not wide.empty:
        wide.pivot_table(index="sparsity", columns="method", values="pie_share").reset_index() \
            .to_csv(root / "pie_share.csv", index=False)
        pie_acc = pd.DataFrame(acc)
        pie_acc = pie_acc[pie_acc["subset"] == "pie"].dropna(subset=["pruned_acc"])
        if not pie_acc.empty:
            pie_acc.pivot_table(index="sparsity", columns="method", values="pruned_acc").reset_index() \
                .to_csv(root / "pruned_acc_pie.csv", index=False)
    bins = [{"group": g, **b} for g, inf in analysis.get("influence", {}).items() for b in inf.get("bins", [])]
    if bins:
        pd.DataFrame(bins).to_csv(root / "el2n_bins.csv", index=False)
