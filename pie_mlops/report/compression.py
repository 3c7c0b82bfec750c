"""The report's compression section: pruning and quantization side by side (compare's
compression.json, pie_mlops/analysis/compression.py), against model size and CPU latency."""

from __future__ import annotations

from html import escape

import numpy as np

TITLE = "Compression: pruning against quantization"
HOW = ("Each point is a group (mean over its seeds): pruned groups (one line per method, across sparsities) and "
       "quantized groups (stars), against the deployable model size (int8 weights at one byte, pruned zeros "
       "packed) and the CPU milliseconds of one fixed test batch. Exemplars are the compression-identified "
       "exemplars: examples whose majority label over the group's seeds differs from the dense majority "
       "(PIEs, for pruning). Flips: the share of examples a model predicts differently from the dense model "
       "of its own seed, a paired count free of seed noise. Below, each quantized group beside the pruned group "
       "nearest to it in size and in latency: at the same saving, which breaks fewer examples.")
PANELS = (("pruned_acc_all", "accuracy (all)"), ("pie_share", "exemplar share"),
          ("pruned_acc_pie", "accuracy on its exemplars"))
AXES = (("model_mb", "model size (MB)"), ("latency_ms", "CPU ms per batch"))


def figure(table: dict, label: str) -> bytes | None:
    """Two rows (size, latency) of three panels (accuracy, exemplar share, accuracy on exemplars);
    None when no group has a size (file-mode compare: no run metrics)."""
    from pie_mlops.report.plots import _plt, colors, png

    groups = table.get("groups", {})
    if not any(r.get("model_mb") for r in groups.values()):
        return None
    plt = _plt()
    fig, axes = plt.subplots(2, 3, figsize=(12, 6.4))
    methods = sorted({r["method"] for r in groups.values()})
    col = colors(methods)
    dense = table.get("dense", {})
    for row, (axis, xlabel) in zip(axes, AXES):
        for ax, (key, title) in zip(row, PANELS):
            for method in methods:
                pts = sorted((r[axis], r.get(key)) for r in groups.values()
                             if r["method"] == method and r.get(axis) and r.get(key) is not None)
                if not pts:
                    continue
                x, y = np.array(pts, dtype=float).T
                quant = groups.get(f"quant-{method}", {}).get("compression") == "quantization"
                ax.plot(x, y, "*" if quant else "o-", ms=11 if quant else 4, color=col[method], label=method)
            if key == "pruned_acc_all" and dense.get(axis):
                ref = [r.get("dense_acc_all") for r in groups.values() if r.get("dense_acc_all") is not None]
                if ref:
                    ax.plot([dense[axis]], [float(np.mean(ref))], "kD", ms=6, label="dense")
            ax.set_xlabel(xlabel)
            ax.set_title(title, fontsize=9)
    axes[0][0].set_ylabel(f"{label}: by size")
    axes[1][0].set_ylabel(f"{label}: by latency")
    axes[0][0].legend(fontsize=6, loc="lower right")
    fig.tight_layout()
    return png(fig)


def section(table: dict | None, label: str, fig, table_html) -> str:
    """The section's HTML; `fig(name, data, alt)` embeds a figure, `table_html(rows, columns)` a table."""
    if not table or not table.get("groups"):
        return ""
    if not any(r["compression"] == "quantization" for r in table["groups"].values()):
        return ""  # pruning alone: the sections above say it all
    dense = table.get("dense", {})
    rows = [{"group": g, "compression": r["compression"], "bits": r.get("bits"), "sparsity": r.get("sparsity"),
             "MB": r.get("model_mb"), "× smaller": r.get("size_ratio"), "ms/batch": r.get("latency_ms"),
             "× faster": r.get("latency_ratio"), "accuracy": r.get("pruned_acc_all"),
             "exemplar share": r.get("pie_share"), "95% CI": _ci(r.get("pie_share_ci")),
             "acc. on exemplars": r.get("pruned_acc_pie"), "dense acc. on them": r.get("dense_acc_pie"),
             "flips vs own dense seed": r.get("flip_share"), "flips CI": _ci(r.get("flip_share_ci"))}
            for g, r in sorted(table["groups"].items(), key=lambda kv: (kv[1]["compression"], kv[0]))]
    pairs = [{"quantized": m["quantized"], "pruned": m["pruned"], "matched on": "size" if m["matched_on"] == "model_mb"
              else "latency", "quantized value": m["quantized_value"], "pruned value": m["pruned_value"],
              "quantized exemplar share": m["quantized_pie_share"], "CI (q)": _ci(m["quantized_pie_share_ci"]),
              "pruned exemplar share": m["pruned_pie_share"], "CI (p)": _ci(m["pruned_pie_share_ci"]),
              "quantized acc.": m["quantized_acc_all"], "pruned acc.": m["pruned_acc_all"],
              "quantized flips": m.get("quantized_flip_share"), "pruned flips": m.get("pruned_flip_share"),
              "fewer broken": _fewer(m, "flip_share") if m.get("quantized_flip_share_ci") else _fewer(m, "pie_share")}
             for m in table.get("matched", [])]
    data = figure(table, label)
    body = (fig("compression", data, "pruning against quantization") if data else
            '<p class="muted">No model sizes (a file-mode compare has no run metrics): the table only.</p>')
    ref = (f"<p>Dense: {_num(dense.get('model_mb'))} MB, {_num(dense.get('latency_ms'))} ms per batch "
           "(measured beside each quantized model).</p>")
    body += ref + table_html(rows, list(rows[0]))
    if pairs:
        body += "<h4>At matched size and latency</h4>" + table_html(pairs, list(pairs[0]))
    return f'<h3 id="compression">{escape(TITLE)}</h3><p class="how">{escape(HOW)}</p>{body}'


def _fewer(m: dict, key: str) -> str:
    """Which side breaks fewer examples, when the two intervals of `key` (flip_share: paired
    flips against the same dense seed; else pie_share) do not overlap."""
    q, p = m.get(f"quantized_{key}_ci"), m.get(f"pruned_{key}_ci")
    if not (isinstance(q, list) and isinstance(p, list) and None not in q + p):
        return "n/a"
    if q[1] < p[0]:
        return "quantized"
    if p[1] < q[0]:
        return "pruned"
    return "neither (intervals overlap)"


def _ci(v) -> str:
    return "n/a" if not isinstance(v, (list, tuple)) or len(v) != 2 or None in v else f"[{v[0]:.3f}, {v[1]:.3f}]"


def _num(v) -> str:
    return "n/a" if v is None else f"{v:.3g}"
