"""The PIE report: one self-contained HTML page over one or more compare directories.

Figures are inline base64 PNGs and the CSS is inline, so the page opens offline, from a
file, an MLflow artifact or a DVC workspace alike: nothing is fetched from the network.
The page and its blocks (section, table, image, example PIEs) are Jinja2 templates with
autoescape (report/templates/pies.html.j2, blocks.html.j2).
"""

from __future__ import annotations

import base64
import json
from pathlib import Path

import numpy as np
import pandas as pd
from markupsafe import Markup, escape

from pie_mlops.util.errors import PieError
from pie_mlops.report import plots
from pie_mlops.report.templating import blocks, render as page

CSS = """
body{font:14px/1.5 system-ui,sans-serif;margin:2rem auto;max-width:1200px;color:#222;padding:0 1rem}
h1{font-size:1.5rem} h2{font-size:1.2rem;margin-top:2.2rem;border-bottom:1px solid #ddd}
h3{font-size:1rem;margin-top:1.4rem} .how{color:#555;font-style:italic;margin:.2rem 0 .6rem}
.box{background:#f4f7fb;border:1px solid #d6e0ee;border-radius:6px;padding:.8rem 1rem;margin:.8rem 0}
img{max-width:100%;display:block;margin:.4rem 0} table{border-collapse:collapse;font-size:12px;margin:.4rem 0}
th,td{padding:.25rem .5rem;border-bottom:1px solid #e6e6e6;text-align:left;vertical-align:top}
th{background:#f5f5f5} td:first-child{white-space:nowrap} td.num{text-align:right;font-variant-numeric:tabular-nums} .muted{color:#888}
"""
# The browser test reads data-figures: how many images really decoded.
SCRIPT = """window.addEventListener('load',function(){var n=0;document.querySelectorAll('img').forEach(
function(i){if(i.naturalWidth>0)n++});document.body.dataset.figures=n;});"""
INTRO = ("The paper reports that pruning keeps a model's <em>mean</em> accuracy almost intact while a few "
         "examples bear most of the damage; the claims table below gives our verdict on this data. A <b>PIE</b> (pruning identified exemplar) is an example whose majority prediction over the "
         "dense models' seeds differs from the majority over one pruned group's seeds (Tropeano et al., 2025). "
         "This page shows, per pruning method and sparsity, how many PIEs there are, how badly they are "
         "predicted, whether they are the influential (high-EL2N) and the complex examples, and how much of the "
         "count seed noise alone explains.")


class Study:
    """One compare directory."""

    def __init__(self, path: Path):
        self.path = Path(path)
        for name in ("summary.json", "analysis.json"):
            if not (self.path / name).is_file():
                raise PieError(f"{self.path / name}: not found; run `pie-mlops compare` first")
        try:
            self.summary = json.loads((self.path / "summary.json").read_text(encoding="utf-8"))
            self.analysis = json.loads((self.path / "analysis.json").read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise PieError(f"{self.path}: malformed JSON ({exc})") from None
        if not isinstance(self.summary, dict) or "meta" not in self.analysis:
            raise PieError(f"{self.path}: summary.json/analysis.json do not follow the compare contract")
        self.floor = self.summary.pop("noise_floor", None)  # beside the groups, not one of them
        self.meta = self.analysis["meta"]
        self.label = f"{self.meta.get('dataset', '?')}/{self.meta.get('arch', '?')}"
        self.df = plots.summary_frame(self.summary)
        extra = self.path / "compression.json"  # pruning vs quantization (absent in older compare outputs)
        try:
            self.compression = json.loads(extra.read_text(encoding="utf-8")) if extra.is_file() else None
        except json.JSONDecodeError as exc:
            raise PieError(f"{extra}: malformed JSON ({exc})") from None

    def table(self, name: str) -> pd.DataFrame | None:
        f = self.path / name
        return pd.read_parquet(f) if f.is_file() else None

    def focus(self) -> str | None:
        """The group most sections zoom in on: the most PIEs at sparsity <= 0.5, else overall."""
        if self.df.empty:
            return None
        low = self.df[self.df["sparsity"].fillna(1) <= 0.5]
        pick = low if not low.empty else self.df
        return str(pick.sort_values(["n_pies", "group"], ascending=[False, True]).iloc[0]["group"])


def _img(data: bytes, alt: str) -> str:
    # str, not Markup: the page is built by concatenation, and str + Markup escapes the str
    return str(blocks().img(f"data:image/png;base64,{base64.b64encode(data).decode()}", alt))


def _fmt(v) -> Markup:
    """A cell's text, as safe HTML (the n/a marker is markup, anything else escaped)."""
    if v is None or (isinstance(v, float) and not np.isfinite(v)):
        return Markup('<span class="muted">n/a</span>')
    if isinstance(v, (bool, np.bool_)):
        return Markup("yes" if v else "no")
    if isinstance(v, (int, np.integer)):
        return Markup(str(int(v)))
    if isinstance(v, (float, np.floating)):
        return Markup(f"{v:.3g}" if abs(v) < 1e-2 and v != 0 else f"{v:.3f}")
    return escape(str(v))


def _table(rows: list[dict], columns: list[str]) -> str:
    cells = [[("num" if isinstance(r.get(c), (int, float, np.number)) else "", _fmt(r.get(c))) for c in columns]
             for r in rows]
    return str(blocks().table(columns, cells))


def _ci(v) -> str:
    """A [low, high] interval as plain text (the table cell escapes it)."""
    if not isinstance(v, (list, tuple)) or len(v) != 2 or v[0] is None or v[1] is None:
        return "n/a"
    return f"[{v[0]:.3f}, {v[1]:.3f}]"


def _section(title: str, how: str, body: str) -> str:
    """A titled block: `title` and `how` are text (escaped), `body` is HTML made here."""
    return str(blocks().section(title, how, Markup(body)))


def _headline(s: Study) -> str:
    gate = s.analysis.get("baseline_gate") or {}
    if gate.get("success") is False:  # the dense models learned nothing: docs/gates.md
        return (f'<div class="box"><b>{escape(s.label)}</b>: stopped. The dense models did not beat the '
                f"trivial baseline: {escape(str(gate.get('message', '')))}</div>")
    if s.df.empty:
        return f'<div class="box"><b>{escape(s.label)}</b>: no pruned groups.</div>'
    # A collapsed group (one class for > 95% of examples) has "PIEs" that are its minority class.
    judged = s.df[~s.df["group"].map(lambda g: bool(s.summary[g].get("collapsed", False)))]
    worst = judged.assign(gap=judged["dense_acc_pie"].astype(float) - judged["pruned_acc_pie"].astype(float))
    worst = worst.dropna(subset=["gap"]).sort_values("gap", ascending=False)
    if worst.empty:
        gap = f"Largest PIE accuracy gap: none ({len(s.df) - len(judged)} of {len(s.df)} groups collapsed, no PIEs elsewhere)."
    else:
        worst = worst.iloc[0]
        gap = (f"Largest PIE accuracy gap: <b>{escape(worst['group'])}</b>, dense {_fmt(worst['dense_acc_pie'])} "
               f"vs pruned {_fmt(worst['pruned_acc_pie'])} on its {int(worst['n_pies'])} PIEs"
               + (f" (collapsed groups left out: {len(s.df) - len(judged)})." if len(judged) < len(s.df) else "."))
    floor = s.analysis.get("noise_floor", {})
    above = [g for g, v in s.summary.items() if isinstance(v, dict) and v.get("above_floor")]  # the floor test
    return (f'<div class="box"><b>{escape(s.label)}</b>: dense accuracy {_fmt(s.df["dense_acc_all"].mean())} '
            f"over {s.meta.get('n_dense_models')} seeds, {s.meta.get('n_examples')} {escape(s.meta.get('split', ''))} "
            f"examples. {gap} Noise floor "
            f"(dense vs dense): {_fmt(floor.get('floor_share'))} of examples; {len(above)} of {len(s.df)} groups "
            f"marked above it (permutation test, Holm: above_floor in summary.json).</div>")


def _study_html(s: Study, figures: dict[str, bytes]) -> str:
    a, parts, key = s.analysis, [f"<h2>{escape(s.label)}</h2>", _headline(s)], s.label.replace("/", "_")

    def fig(name: str, data: bytes, alt: str) -> str:
        figures[f"{key}_{name}.png"] = data
        return _img(data, alt)

    if s.df.empty:
        return "".join(parts)
    pruned = s.df[s.df["sparsity"].notna()] if "sparsity" in s.df else s.df  # quant-<method>: no sparsity
    if not pruned.empty:
        parts.append(_section("Accuracy against sparsity", "Solid: pruned models; dashed: the dense models on the "
                              "same examples; panels: all examples, each group's PIEs, its non-PIEs. Whether accuracy "
                              "collapses on PIEs is claim (a): its verdict is in the claims table.",
                              fig("accuracy", plots.accuracy_vs_sparsity(pruned, s.label), "accuracy against sparsity")))
        parts.append(_section("PIEs against sparsity", "Share of examples that are PIEs; the grey band is what two "
                              "halves of the dense seeds disagree on by chance.",
                              fig("pies", plots.pies_vs_sparsity(pruned, a.get("noise_floor", {}), s.label),
                                  "PIE share")))
    from pie_mlops.report.compression import section as compression_section

    parts.append(compression_section(s.compression, s.label, fig, _table))
    inf = a.get("influence", {})
    if inf:
        # Each method at its sparsity nearest 0.5: at 0.9 many models collapse to one class.
        mid = s.df[s.df["group"].isin(inf)].assign(dist=lambda d: (d["sparsity"] - 0.5).abs())
        top = mid.sort_values(["dist", "sparsity"]).groupby("method").head(1)["group"].tolist()
        rows = [{"group": g, "base rate": inf[g]["base_rate"], "top-5% PIE share": inf[g]["top5"]["pie_share"],
                 "enrichment 5%": inf[g]["top5"]["enrichment"], "top-10% PIE share": inf[g]["top10"]["pie_share"],
                 "enrichment 10%": inf[g]["top10"]["enrichment"], "p (5%)": inf[g]["top5"].get("p_value")}
                for g in sorted(inf)]
        parts.append(_section("Influence (EL2N)", "Training examples ranked by EL2N early in training (20 bins, "
                              "hardest right), for each method at its sparsity nearest 0.5. Enrichment: PIE share among the top EL2N examples over the base rate.",
                              (fig("el2n", plots.el2n_bins(inf, top, s.label), "EL2N bins") if top else "")
                              + _table(rows, list(rows[0]))))
    else:
        parts.append(_section("Influence (EL2N)", "", "<p>No train-split predictions: influence not analysed.</p>"))
    focus = s.focus()
    cls = a.get("classes", {}).get(focus)
    if cls:
        rows = [{"group": g, "chi2": c.get("chi2"), "p": c.get("p_value"), "PIEs per class": str(c["pie_counts"])}
                for g, c in sorted(a["classes"].items())]
        parts.append(_section("Class frequency", f"Left: class shares among all examples and among the PIEs of "
                              f"{focus}; right: per-class accuracy. Table: chi-square of PIE vs data shares.",
                              fig("classes", plots.class_bars(cls, s.meta.get("label_names", []), focus, s.label),
                                  "class distribution") + _table(rows, list(rows[0]))))
    measures, pies = s.table("complexity.parquet"), s.table("pies.parquet")
    cx = a.get("complexity", {})
    if measures is not None and pies is not None and focus in cx:
        flags = pies[pies["group"] == focus].set_index("example_id")["is_pie"].reindex(measures["example_id"])
        body = fig("complexity", plots.complexity_boxes(measures, flags.fillna(False).to_numpy(bool), cx[focus],
                                                        focus, s.label), "complexity")
        rows = [{"group": g, **{f"{m} ×": v["ratio"] for m, v in t.items()},
                 "tokens p (Holm)": t.get("n_tokens", {}).get("p_holm"),
                 "tokens Cliff's δ": t.get("n_tokens", {}).get("cliffs_delta")} for g, t in sorted(cx.items())]
        parts.append(_section("Complexity", f"Distributions for {focus}; table: PIE/non-PIE ratio of means for "
                              "every group (1.05 = PIEs 5% higher), Mann–Whitney p with Holm correction.",
                              body + _table(rows, list(rows[0]))))
    if a.get("stability"):
        parts.append(_section("Stability over seeds", "Jaccard overlap of two PIE sets built from independent "
                              "k-seed draws: near 1 means the PIE set is reproducible.",
                              fig("stability", plots.stability(a["stability"], s.label), "stability")))
    if a.get("overlap", {}).get("groups"):
        parts.append(_section("Overlap between methods", "Jaccard overlap of the PIE sets of every pair of groups.",
                              fig("overlap", plots.overlap(a["overlap"], s.label), "overlap heatmap")))
    ex = s.table("pie_examples.parquet")
    if ex is not None and len(ex):
        show = ex[ex["group"] == focus].head(12) if focus in set(ex["group"]) else ex.head(12)
        rows = []
        for r in show.itertuples():
            text = r.text + (f" ‖ {r.text_pair}" if getattr(r, "text_pair", None) else "")
            rows.append({"text": text, "short": text if len(text) <= 220 else text[:217] + "…", "gold": r.gold,
                         "dense": f"{r.dense_label} ({r.dense_votes:.0%})",
                         "pruned": f"{r.pruned_label} ({r.pruned_votes:.0%})"})
        parts.append(_section(f"Example PIEs of {focus}", "Gold label, and the dense and pruned majority labels "
                              "with their vote shares. Hover a text to read it whole.", blocks().examples(rows)))
    cols = ["group", "n_models", "n_pies", "pie_share", "pie_share_ci", "above_floor", "pie_pruned_right_share",
            "pie_dense_right_share", "pie_both_wrong_share", "n_ties_dense", "n_ties_pruned", "n_pies_tie_decided",
            "dense_acc_all", "pruned_acc_all", "dense_acc_pie", "pruned_acc_pie",
            "dense_modal_acc_pie", "pruned_modal_acc_pie", "dense_acc_nonpie", "pruned_acc_nonpie"]
    records = [{k: (_ci(v) if k.endswith("_ci") else v) for k, v in r.items()} for r in s.df.to_dict("records")]
    collapsed = [r for r in records if r.get("collapsed") in (True,)]  # numpy or Python bool
    parts.append(_section("Every group", "The numbers of summary.json: per-model means over seeds, the modal "
                          "label's accuracy (the paper's), the PIE share's 95% interval over test examples (seeds "
                          "fixed), whether it is above the noise floor (permutation test, Holm), and its PIEs "
                          "split by who is right: pruned, dense, or neither.",
                          _table([r for r in records if r.get("collapsed") not in (True,)], [c for c in cols if c in s.df])))
    if collapsed:
        parts.append(_section("Collapsed groups", "Their models predict one class for more than 95% of the "
                              "examples: their 'PIEs' are just the other classes. Kept out of the claims.",
                              _table(collapsed, [c for c in ("group", "majority_pred_share", *cols[1:4]) if c in s.df])))
    return "".join(parts)


def render(studies: list[Study], title: str, claims: list[dict] = ()) -> tuple[str, dict[str, bytes]]:
    """(HTML text, figures by file name). `claims`: claims.json dicts, shown first."""
    from pie_mlops.report.claims import claims_html

    figures: dict[str, bytes] = {}
    body = "".join(claims_html(c) for c in claims)
    populated = [s for s in studies if not s.df.empty]
    if len(populated) > 1:
        data = plots.architectures({s.label: s.df for s in populated},
                                   {s.label: s.analysis.get("noise_floor", {}) for s in populated})
        figures["architectures.png"] = data
        body += ("<h2>Architectures compared</h2>" + _section(
            "PIE share by architecture", "One panel per method: each architecture's PIE share at each "
            "sparsity, each against its own noise floor (dotted). Which one is more prone is claim (e).", _img(data, "architectures compared")))
    body += "".join(_study_html(s, figures) for s in studies)
    return page("pies.html.j2", title=title, css=CSS, script=SCRIPT, intro=INTRO, body=Markup(body)), figures
