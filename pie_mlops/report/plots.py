"""The report's figures: matplotlib (Agg), returned as PNG bytes. Inputs are the compare outputs.

One `Study` is one compare directory (a dataset and an architecture). Methods are
`<criterion>-<schedule>`; each gets one colour across every figure.
"""

from __future__ import annotations

import io

import numpy as np
import pandas as pd

from pie_mlops.report.plot_tables import method_of

SUBSETS = (("all", "all examples"), ("pie", "PIEs"), ("nonpie", "non-PIEs"))


def _plt():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    plt.rcParams.update({"font.size": 9, "axes.spines.top": False, "axes.spines.right": False,
                         "axes.grid": True, "grid.alpha": 0.3})
    return plt


def png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    _plt().close(fig)
    return buf.getvalue()


def summary_frame(summary: dict) -> pd.DataFrame:
    rows = [{"group": g, "method": method_of(g), **{k: v for k, v in s.items() if not isinstance(v, dict)}}
            for g, s in summary.items()]
    df = pd.DataFrame(rows)
    return df.sort_values(["method", "sparsity"]) if not df.empty else df


def colors(methods) -> dict:
    cmap = _plt().get_cmap("tab10")
    return {m: cmap(i % 10) for i, m in enumerate(sorted(methods))}


def accuracy_vs_sparsity(df: pd.DataFrame, label: str) -> bytes:
    """Three panels (all, PIEs, non-PIEs): pruned accuracy per method, dense dashed."""
    plt = _plt()
    fig, axes = plt.subplots(1, 3, figsize=(12, 3.4), sharey=True)
    col = colors(df["method"].unique())
    for ax, (subset, title) in zip(axes, SUBSETS):
        for method, d in df.groupby("method"):
            ax.plot(d["sparsity"], d[f"pruned_acc_{subset}"], "o-", color=col[method], label=method)
            ax.plot(d["sparsity"], d[f"dense_acc_{subset}"], "--", color=col[method], alpha=0.5)
        if subset == "all":
            ax.axhline(df["dense_acc_all"].mean(), color="black", ls="--", lw=1, label="dense")
        ax.set_title(f"accuracy on {title}")
        ax.set_xlabel("sparsity")
    axes[0].set_ylabel(f"{label}: accuracy (mean over seeds)")
    axes[0].legend(fontsize=7, loc="lower left")
    return png(fig)


def pies_vs_sparsity(df: pd.DataFrame, floor: dict, label: str) -> bytes:
    """PIE share per method against sparsity, over the dense-vs-dense noise floor band."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6.5, 3.4))
    col = colors(df["method"].unique())
    if floor.get("floor_share") is not None:
        ax.axhspan(floor["floor_low"], floor["floor_high"], color="grey", alpha=0.25,
                   label=f"noise floor (dense vs dense, {floor['k']} vs {floor['k']} seeds)")
    for method, d in df.groupby("method"):
        ax.plot(d["sparsity"], d["pie_share"], "o-", color=col[method], label=method)
        if "pie_share_ci" in d:  # 95% bootstrap interval over seeds
            ci = [v if isinstance(v, (list, tuple)) and None not in v else [np.nan, np.nan] for v in d["pie_share_ci"]]
            lo, hi = np.array(ci, float).T
            ax.vlines(d["sparsity"], lo, hi, color=col[method], alpha=0.6, lw=1)
        for s, n, y in zip(d["sparsity"], d["n_pies"], d["pie_share"]):
            ax.annotate(str(int(n)), (s, y), textcoords="offset points", xytext=(0, 4), fontsize=6, ha="center")
    ax.set(xlabel="sparsity", ylabel="PIE share of examples", title=f"{label}: PIEs against sparsity (labels: count)")
    ax.legend(fontsize=7)
    return png(fig)


def el2n_bins(influence: dict, groups: list[str], label: str) -> bytes:
    """PIE share and pruned/dense loss ratio per EL2N percentile bin."""
    plt = _plt()
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(12, 3.4))
    col = colors({method_of(g) for g in groups})
    for g in groups:
        bins = pd.DataFrame(influence[g]["bins"])
        a1.plot(bins["bin"], bins["pie_share"], "o-", ms=3, color=col[method_of(g)], label=g)
        # The paper's seed-paired ratio where there is one, else the ratio of means.
        ratio = bins["paired_loss_ratio"] if bins.get("paired_loss_ratio") is not None \
            and bins["paired_loss_ratio"].notna().any() else bins["loss_ratio"]
        # A dense loss that underflowed makes the paired ratio astronomically large (el2n.py lifts
        # it to the smallest float), which a log axis cannot draw: such bins are left out.
        ratio = pd.to_numeric(ratio, errors="coerce").astype(float)
        ratio = ratio.where((ratio > 1e-12) & (ratio < 1e12))
        a2.plot(bins["bin"], ratio, "o-", ms=3, color=col[method_of(g)], label=g)
    a1.set(xlabel="EL2N percentile bin (1 = easiest, 20 = hardest)", ylabel="training-set PIE share",
           title=f"{label}: PIEs by influence")
    a2.set(xlabel="EL2N percentile bin", ylabel="pruned / dense loss, seed-paired (log)",
           title=f"{label}: damage by influence",
           yscale="log")
    a2.axhline(1.0, color="black", lw=1, ls="--")
    a1.legend(fontsize=7)
    return png(fig)


def class_bars(section: dict, label_names: list[str], group: str, label: str) -> bytes:
    plt = _plt()
    data = np.asarray(section["data_counts"], float)
    pies = np.asarray(section["pie_counts"], float)
    x = np.arange(len(data))
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(11, 3.2))
    a1.bar(x - 0.2, data / max(data.sum(), 1), 0.4, label="all examples")
    a1.bar(x + 0.2, pies / max(pies.sum(), 1), 0.4, label="PIEs")
    p = section.get("p_value")
    a1.set(xticks=x, ylabel="share", title=f"{label} {group}: class shares" + (f" (chi² p = {p:.2g})" if p is not None else ""))
    a1.set_xticklabels(label_names[:len(x)], rotation=30, ha="right")
    a1.legend(fontsize=7)
    score = "f1" if section.get("score") == "f1" else "acc"  # per-label F1 for multi-label
    d = np.array([np.nan if v is None else v for v in section[f"dense_{score}_per_class"]], float)
    q = np.array([np.nan if v is None else v for v in section[f"pruned_{score}_per_class"]], float)
    a2.bar(x - 0.2, d, 0.4, label="dense")
    a2.bar(x + 0.2, q, 0.4, label="pruned")
    name = "F1" if score == "f1" else "accuracy"
    a2.set(xticks=x, ylabel=name, title=f"per-class {name}", ylim=(0, 1))
    a2.set_xticklabels(label_names[:len(x)], rotation=30, ha="right")
    a2.legend(fontsize=7)
    return png(fig)


def complexity_boxes(measures: pd.DataFrame, is_pie: np.ndarray, tests: dict, group: str, label: str) -> bytes:
    plt = _plt()
    names = [c for c in measures.columns if c != "example_id"]
    fig, axes = plt.subplots(1, len(names), figsize=(1.6 * len(names), 3.2))
    for ax, name in zip(np.atleast_1d(axes), names):
        v = measures[name].to_numpy(float)
        ax.boxplot([v[~is_pie & np.isfinite(v)], v[is_pie & np.isfinite(v)]], showfliers=False, widths=0.6)
        ax.set_xticks([1, 2], ["non-PIE", "PIE"], fontsize=7)
        t = tests.get(name, {})
        p = t.get("p_holm")
        ax.set_title(f"{name}\n×{t.get('ratio') or float('nan'):.2f}, p={p if p is None else f'{p:.1g}'}", fontsize=7)
    fig.suptitle(f"{label} {group}: complexity of PIEs vs non-PIEs (ratio of means, Holm p)", fontsize=9, y=1.1)
    return png(fig)


def stability(stab: dict, label: str) -> bytes:
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6.5, 3.4))
    col = colors({method_of(g) for g in stab})
    for i, (g, s) in enumerate(sorted(stab.items())):
        if not s["k"]:
            continue
        ax.errorbar(np.asarray(s["k"]) + 0.04 * (i % 7 - 3), s["jaccard_mean"],
                    yerr=[np.subtract(s["jaccard_mean"], s["jaccard_low"]), np.subtract(s["jaccard_high"], s["jaccard_mean"])],
                    fmt="o-", ms=3, capsize=2, color=col[method_of(g)], alpha=0.4 + 0.6 * float(g.rsplit("@", 1)[-1] if "@" in g else 1),
                    label=g)
    ax.set(xlabel="seeds per group (k)", ylabel="Jaccard of two PIE sets", ylim=(0, 1.05),
           title=f"{label}: how stable is a k-seed PIE set?")
    if ax.get_legend_handles_labels()[0]:  # with too few seeds no group has a curve
        ax.legend(fontsize=6, ncol=2)
    else:
        ax.text(0.5, 0.5, "too few seeds per group to draw two disjoint PIE sets", ha="center",
                transform=ax.transAxes, fontsize=8)
    return png(fig)


def overlap(ov: dict, label: str) -> bytes:
    plt = _plt()
    groups = ov["groups"]
    mat = np.array(ov["jaccard"], float)
    size = max(4.0, 0.32 * len(groups) + 2)
    fig, ax = plt.subplots(figsize=(size + 1, size))
    im = ax.imshow(mat, vmin=0, vmax=1, cmap="viridis")
    ax.set_xticks(range(len(groups)), groups, rotation=90, fontsize=6)
    ax.set_yticks(range(len(groups)), groups, fontsize=6)
    ax.grid(False)
    fig.colorbar(im, ax=ax, label="Jaccard")
    ax.set_title(f"{label}: overlap of PIE sets")
    return png(fig)


def architectures(studies: dict[str, pd.DataFrame], floors: dict[str, dict]) -> bytes:
    """PIE share against sparsity, one panel per method, one line per study (architecture),
    each with its own dense-vs-dense noise floor dotted: which architecture is more prone?"""
    plt = _plt()
    methods = sorted(set().union(*(set(df["method"]) for df in studies.values())))
    cols = min(3, len(methods))
    rows = -(-len(methods) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4 * cols, 3 * rows), sharey=True, squeeze=False)
    cmap = _plt().get_cmap("Dark2")
    for ax, method in zip(axes.ravel(), methods):
        for i, (label, df) in enumerate(sorted(studies.items())):
            d = df[df["method"] == method]
            if not d.empty:
                ax.plot(d["sparsity"], d["pie_share"], "o-", color=cmap(i), label=label)
            f = floors.get(label, {}).get("floor_share")
            if f is not None:
                ax.axhline(f, color=cmap(i), ls=":", lw=1)
        ax.set(title=method, xlabel="sparsity")
    for ax in axes.ravel()[len(methods):]:
        ax.set_visible(False)
    axes[0, 0].set_ylabel("PIE share (dotted: noise floor)")
    axes[0, 0].legend(fontsize=7)
    fig.tight_layout()
    return png(fig)
