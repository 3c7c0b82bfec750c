"""The compare stage's gates (docs/gates.md): the great-expectations checks the predictions must
pass, what the dense models must beat (the baseline gate), what an architecture whose dense models
did not beat it leaves behind, and the champion's verdict.

A stopped architecture still gets its output directory, written atomically and replacing
any earlier results: `champion.json` (no champion, and why), `analysis.json` (the gate's
verdict, which the report's headline states), an empty `summary.json` and the report page.
No PIEs are computed: they would be the differences between models that learned nothing.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from pie_mlops.util.errors import BaselineGateError, DataQualityError


def gate_predictions(frame: pd.DataFrame, texts: pd.DataFrame, meta: dict, params: dict, checks_dir: Path, md5s,
                     arch: str = "") -> None:
    """Great-expectations checks on the predictions; a failure stops the stage (exit 1).
    Dense models no better than the trivial baseline (and nothing else wrong) stop only `arch`."""
    from pie_mlops.data.prediction_quality import validate_predictions
    from pie_mlops.tracking import data_md5

    current = data_md5(Path(params["data_dir"])) if md5s is not None else None
    spec = baseline_spec(frame, texts, meta, float(params["min_gain_over_baseline"]))
    result = validate_predictions(frame, texts["example_id"].astype(str).tolist(), len(meta["label_names"]),
                                  int(params["min_seeds"]), checks_dir, md5s=md5s, current_md5=current,
                                  baseline=spec, name=".".join(filter(None, (meta["name"], arch, "predictions"))))
    if not result["success"]:
        names = [c["name"] for c in result["checks"] if not c["success"]]
        if names == ["dense_beats_baseline"]:
            raise BaselineGateError(baseline_message(arch, params["split"], spec, checks_dir), spec)
        failed = ", ".join(names)
        raise DataQualityError(f"prediction checks failed ({failed}): see {checks_dir / 'result.json'} "
                               f"and the Data Docs at {checks_dir / 'data_docs' / 'index.html'}")


def baseline_spec(frame: pd.DataFrame, texts: pd.DataFrame, meta: dict, min_gain: float) -> dict:
    """The gate's input: the trivial baseline on the compared split and each dense model's score."""
    from pie_mlops.compare.baseline import baseline_name, frame_scores, trivial_baseline
    from pie_mlops.data.contract import label_column

    task = meta["task"]
    labels = texts[label_column(task)].to_numpy()
    return {"name": baseline_name(task), "value": trivial_baseline(labels, task), "min_gain": float(min_gain),
            "scores": frame_scores(frame, task)}


def baseline_message(arch: str, split: str, spec: dict, checks_dir: Path) -> str:
    """One line: which dense models failed, the baseline, where the GX result is."""
    bar = spec["value"] + spec["min_gain"]
    weak = [f"{k} {v:.4f}" for k, v in sorted(spec["scores"].items()) if not v >= bar - 1e-12]
    return (f"{arch}: the dense models did not beat {spec['name']} {spec['value']:.4f} by {spec['min_gain']:g} on "
            f"{split} ({', '.join(weak)}): they learned nothing, so no PIEs and no champion for {arch}; tune it "
            f"(tune.space, tune.n_trials) or train longer (see {checks_dir / 'result.json'})")


def stop(out: Path, meta: dict, fmt: dict, split: str, exc) -> None:
    """An architecture stopped by the gate: its output directory, and no `champion` alias
    (an earlier run's would keep pointing at a version that is no longer judged)."""
    from pie_mlops import tracking

    write_stopped(out, meta, fmt, split, str(exc), exc.spec)
    tracking.clear_champion(tracking.registered_model_name(fmt["dataset"], fmt["arch"]))


def write_stopped(out: Path, meta: dict, fmt: dict, split: str, message: str, spec: dict) -> None:
    """The stopped architecture's output directory (see the module docstring)."""
    from pie_mlops.util.atomic import atomic_dir
    from pie_mlops.report.build import build_report

    gate = {"success": False, "message": message, "split": split,
            **{k: spec[k] for k in ("name", "value", "min_gain")},
            "scores": {k: (v if v == v else None) for k, v in spec["scores"].items()}}
    analysis = {"meta": {**fmt, "split": split, "n_dense_models": len(spec["scores"]),
                         "label_names": list(meta["label_names"])}, "baseline_gate": gate}
    with atomic_dir(out) as tmp:
        for name, obj in (("summary.json", {}), ("analysis.json", analysis),
                          ("champion.json", {"champion": None, "reason": message, "baseline": spec["value"],
                                             "min_gain": spec["min_gain"]})):
            (tmp / name).write_text(json.dumps(obj, indent=2, sort_keys=True, allow_nan=False) + "\n",
                                    encoding="utf-8")
        build_report([tmp], tmp / "report", title=f"PIEs of {fmt['dataset']} / {fmt['arch']}")


def champion_verdict(scores: pd.DataFrame, flags: dict, params: dict, test, collapsed: set[str]) -> dict:
    """The champion row, or {"champion": None, "reason": ...} (pie_mlops.compare.selection.choose_champion).
    `flags`: the PIE flags of the non-collapsed groups (the sensitive subset's union)."""
    from pie_mlops.compare.baseline import baseline_name, score, trivial_baseline
    from pie_mlops.compare.pies import model_predictions
    from pie_mlops.compare.selection import choose_champion

    tolerance = float(params["champion_tolerance"])
    dense = scores[scores["group"] == "dense"]
    pruned = scores[scores["group"] != "dense"]
    d = test.groups["dense"]  # on the gate's scale (micro-F1 multi-label), so file mode is judged alike
    dense_scores = {f"dense/s{int(s)}": score(test.labels, p, test.task)
                    for s, p in zip(d.seeds, model_predictions(d.logits, test.task, d.thresholds))}
    row = choose_champion(pruned, float(dense["acc_subset"].mean()), float(dense["acc_all"].mean()), tolerance,
                          baseline=trivial_baseline(test.labels, test.task),
                          min_gain=float(params["min_gain_over_baseline"]), dense_scores=dense_scores,
                          collapsed=collapsed, baseline_name=baseline_name(test.task))
    row = {k: (None if isinstance(v, float) and np.isnan(v) else v) for k, v in row.items()}
    row.update(tolerance=tolerance, n_sensitive=int(np.logical_or.reduce(list(flags.values())).sum())
               if flags else 0)
    return row
