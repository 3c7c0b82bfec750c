"""The comparison published to MLflow: one `compare` run with per-group metrics and the output
directory, the PIE metrics on each compared model's own run (so runs compare side by side in the
UI), each pruned version's PIE line in its description, and the `champion` alias (or none)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from pie_mlops.report.plot_tables import method_of, sparsity_of


def _pie_line(group: dict, row, params: dict, run_id: str) -> str:
    """One version's PIE line: its group's PIE share and this model's accuracy on the PIEs."""
    acc = "n/a" if pd.isna(row.acc_pie) else f"{row.acc_pie:.4f}"
    collapsed = " (group collapsed: kept out of the claims)" if group.get("collapsed") else ""
    return (f"{group['n_pies']} of the {params['split']} examples ({group['pie_share']:.1%}) are PIEs of group "
            f"{row.group}{collapsed}; this model's accuracy on them {acc} (compare run {run_id}).")


def publish_comparison(params, dataset, arch, out: Path, core, scores, runs, champion, analysis, job_tags: dict) -> str:
    """Log one architecture's comparison (see the module docstring); the compare run's id.
    `champion`: the verdict's row, or None (the alias is cleared); it gets the version it points at."""
    from pie_mlops import tracking

    summary = core.summary
    logged = {k: v for k, v in params.items() if k not in ("arch", "models")}
    logged.update(arch=arch, data_md5=tracking.data_md5(Path(params["data_dir"])))
    with tracking.compare_run(dataset, arch, logged, job_tags) as run_id:
        metrics, curves = {}, []
        for group, s in summary.items():
            for key in ("n_pies", "pie_share", "dense_acc_pie", "pruned_acc_pie", "pruned_acc_all",
                        "pruned_acc_nonpie", "n_ties_dense", "n_ties_pruned"):
                metrics[tracking.metric_key(group, key)] = s.get(key)
                # One chart per method in the UI: the value against sparsity (step = percent).
                if np.isfinite(sparsity_of(group)):  # quant-<method> groups have no sparsity axis
                    curves.append((f"{key}/{method_of(group)}", s.get(key), int(round(sparsity_of(group) * 100))))
        floor = analysis.get("noise_floor", {})
        metrics["noise_floor_share"] = floor.get("floor_share")
        tracking.log_metric_batch(run_id, metrics, curves=curves)
        table = pd.DataFrame([{"group": g, "sparsity": sparsity_of(g), "n_pies": s["n_pies"],
                               "pie_share": s["pie_share"], "dense_acc_pie": s.get("dense_acc_pie"),
                               "pruned_acc_pie": s.get("pruned_acc_pie"), "pruned_acc_all": s.get("pruned_acc_all")}
                              for g, s in summary.items()])
        tracking.log_compare_artifacts(run_id, out, table)
        by_key = {(r["group"], r["seed"]): r["run_id"] for r in runs}
        name = tracking.registered_model_name(dataset, arch)
        for row in scores.itertuples():  # PIE metrics on each model's own run
            rid = by_key.get((row.group, row.seed))
            if rid is None:
                continue
            extra = {"acc_sensitive": row.acc_subset}
            if row.group != "dense":
                extra.update(pie_share=summary[row.group]["pie_share"], acc_pie=row.acc_pie, acc_nonpie=row.acc_nonpie)
                version = tracking.version_of_run(name, rid)
                if version is not None:  # the registry UI shows each version's PIEs beside its scores
                    tracking.set_description_line(name, version, "PIEs", _pie_line(summary[row.group], row, params,
                                                                                     run_id))
            tracking.log_metric_batch(rid, {k: (None if pd.isna(v) else v) for k, v in extra.items()})
        if champion is not None:
            version = tracking.version_of_run(name, by_key[(champion["group"], champion["seed"])])
            if version is not None:
                tracking.set_champion(name, version, {"champion_reason": champion["reason"],
                                                      "champion_compare_run": run_id})
                champion["version"] = version
        else:  # no version qualifies now: an earlier run's alias must not keep pointing at one
            tracking.clear_champion(name)
        return run_id
