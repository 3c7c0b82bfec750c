"""All analyses of one comparison, as the `analysis.json` dict plus two tables. Pure: arrays in.

Sections (schema in the compare stage's docs): influence (EL2N bins, top-5/10% enrichment),
classes (chi-square, per-class accuracy), complexity (PIE vs non-PIE), stability (Jaccard vs
seeds), noise_floor (dense vs dense), overlap (Jaccard between groups).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from pie_mlops.analysis import classes as cls
from pie_mlops.analysis import complexity as cx
from pie_mlops.analysis import el2n as el
from pie_mlops.analysis import enrichment_perm as ep
from pie_mlops.analysis import heldout as ho
from pie_mlops.analysis import permutation as pm
from pie_mlops.analysis import stability as st
from pie_mlops.util.errors import PieError
from pie_mlops.compare.pies import CompareResult, Stacked, compare, modal_labels, model_predictions, pie_flags
from pie_mlops.util.log import progress_disabled


def clean(obj):
    """JSON-safe: numpy scalars to Python, NaN/inf to None."""
    if isinstance(obj, dict):
        return {str(k): clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple, np.ndarray)):
        return [clean(v) for v in obj]
    if isinstance(obj, (np.bool_, bool)):
        return bool(obj)
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        return None if not math.isfinite(float(obj)) else float(obj)
    return obj


def example_losses(logits: np.ndarray, labels: np.ndarray, task: str) -> np.ndarray:
    """(m, n) per-model, per-example loss: cross-entropy, or mean binary cross-entropy."""
    z = logits.astype(np.float64)
    if task == "multi_label":
        y = labels.astype(np.float64)[None]
        # log(1 + exp(-|z|)) form: stable for large logits.
        return (np.maximum(z, 0) - z * y + np.log1p(np.exp(-np.abs(z)))).mean(axis=-1)
    logz = z - z.max(axis=-1, keepdims=True)
    logp = logz - np.log(np.exp(logz).sum(axis=-1, keepdims=True))
    return -np.take_along_axis(logp, labels[None, :, None].repeat(len(z), 0), axis=-1)[..., 0]


def influence(group: str, train: Stacked, snapshot: Stacked, snapshot_name: str, n_perm: int = 2000,
              perm_seed=0) -> dict:
    """EL2N bins and top-q enrichment for one pruned group, from training-set PIEs."""
    if group not in train.groups or "dense" not in train.groups or "dense" not in snapshot.groups:
        return {}
    if not np.array_equal(train.example_ids, snapshot.example_ids):
        return {}
    task, d, p = train.task, train.groups["dense"], train.groups[group]
    scores = el.el2n_scores(snapshot.groups["dense"].logits, snapshot.labels, task)
    pie = pie_flags(modal_labels(d.logits, task, d.thresholds), modal_labels(p.logits, task, p.thresholds))
    d_loss, p_loss = example_losses(d.logits, train.labels, task), example_losses(p.logits, train.labels, task)
    # Seed pairs: the pruned model of seed s comes from the dense model of seed s.
    common, di, pi = np.intersect1d(d.seeds, p.seeds, return_indices=True)
    paired = el.paired_loss_ratio(d_loss[di], p_loss[pi]) if len(common) else None
    table = el.influence_table(scores, pie, d_loss, p_loss, paired=paired)
    bins = [{"bin": int(r.bin) + 1, "el2n_low": r.el2n_min, "el2n_high": r.el2n_max, "n": int(r.n),
             "dense_loss": r.dense_loss, "pruned_loss": r.pruned_loss, "loss_ratio": r.loss_ratio,
             "paired_loss_ratio": r.paired_loss_ratio, "pie_share": r.pie_share} for r in table.itertuples()]
    tops = {}
    for name, q in (("top5", 0.05), ("top10", 0.10)):
        t = el.top_share(scores, pie, q)
        tops[name] = {"pie_share": t["top_share"], "base_rate": t["base_rate"], "enrichment": t["enrichment"],
                      "n": t["k"], "p_value": t["p_value"]}
    return {"snapshot": snapshot_name, "base_rate": float(pie.mean()), "n_train": int(len(pie)),
            "n_seed_pairs": int(len(common)), "bins": bins, **tops,
            "disjoint": disjoint_enrichment(train, snapshot, group, n_perm=n_perm, perm_seed=perm_seed)}


def disjoint_enrichment(train: Stacked, snapshot: Stacked, group: str, seed: int = 0, q: float = 0.10,
                        n_perm: int = 2000, perm_seed=0) -> dict:
    """Claim (b) without restating itself: EL2N from one half of the dense seeds, the dense modal
    label (hence the PIEs) from the other half and from the pruned models not grown from the
    first half; top-q enrichment within dense-right and dense-wrong examples (CMH, descriptive),
    and `perm_test`, the same enrichment against relabelings of the PIE-defining models (seed
    noise at the same seeds: enrichment_perm), which decides (b)."""
    task, d, p, s = train.task, train.groups["dense"], train.groups[group], snapshot.groups["dense"]
    both = np.intersect1d(d.seeds, s.seeds)
    if len(both) < 2:
        return {"note": "needs 2 dense seeds with train and snapshot predictions"}
    el2n_seeds = np.random.default_rng(seed).permutation(both)[: len(both) // 2]
    vote_d = ~np.isin(d.seeds, el2n_seeds)
    vote_p = ~np.isin(p.seeds, el2n_seeds)
    if not vote_p.any():  # no pruned model independent of the EL2N seeds: use them all (said in `note`)
        vote_p[:] = True
    scores = el.el2n_scores(s.logits[np.isin(s.seeds, el2n_seeds)], snapshot.labels, task)

    def modal(stack, keep):
        return modal_labels(stack.logits[keep], task, None if stack.thresholds is None else stack.thresholds[keep])
    dm = modal(d, vote_d)
    pie = pie_flags(dm, modal(p, vote_p))
    right = (dm.label == train.labels) if task != "multi_label" else (dm.label == train.labels).all(axis=1)
    out = el.stratified_enrichment(scores, pie, right.astype(int), q)
    top = np.zeros(len(scores), bool)
    top[np.argsort(-scores, kind="stable")[: out["k"]]] = True
    thr = None if d.thresholds is None else np.concatenate([d.thresholds[vote_d], p.thresholds[vote_p]])
    votes = pm.Votes(np.concatenate([d.logits[vote_d], p.logits[vote_p]]), task, thr, "probability")
    ds = d.seeds[vote_d]  # seed_pairs searches sorted dense seeds; unsorted: pooled (never seen: stacks are sorted)
    pairs = pm.seed_pairs(group, ds, p.seeds[vote_p]) if np.all(np.diff(ds) > 0) else None
    em = modal(d, ~vote_d)  # the EL2N seeds' final labels: strata the relabelings leave alone
    fixed = (em.label == train.labels) if task != "multi_label" else (em.label == train.labels).all(axis=1)
    perm = ep.enrichment_test(votes, int(vote_d.sum()), int(vote_p.sum()), pairs, top, fixed, n_perm, perm_seed)
    return {**out, "perm_test": {**perm, "strata_by": "the EL2N seeds' final modal label right or wrong"},
            "el2n_seeds": sorted(int(x) for x in el2n_seeds), "n_dense_voters": int(vote_d.sum()),
            "n_pruned_voters": int(vote_p.sum()), "strata_by": "dense modal label right (1) or wrong (0)"}


def vs_dense_long(test: Stacked, groups: list[str], rules: dict, seed: int = 0) -> dict:
    """The training-length control: each ft/wr group against `dense-long` (dense models trained
    for the ft/wr length, 4E), with the statistics of claim (a). {} without a dense-long group."""
    from pie_mlops.analysis.claim_rules import DENSE_LONG, parse

    if DENSE_LONG not in test.groups:
        return {}
    ref, out = test.groups[DENSE_LONG], {}
    for i, g in enumerate(groups):
        if (parse(g) or {}).get("schedule") not in ("ft", "wr"):
            continue
        p = test.groups[g]
        pie = pie_flags(modal_labels(ref.logits, test.task, ref.thresholds), modal_labels(p.logits, test.task, p.thresholds))
        kw = {"n_boot": int(rules["n_resamples"]), "seed": seed + i}
        out[g] = {"pie_share": float(pie.mean()),
                  "half_split": ho.half_split(ref, p, test.labels, test.task, n_splits=int(rules["n_splits"]), **kw),
                  "overall_drop": ho.overall_drop(ref, p, test.labels, test.task, **kw)}
    return out


def class_section(result: CompareResult, group: str) -> dict:
    test = result.stacked
    pie = result.flags[group]
    d, p = test.groups["dense"], test.groups[group]
    if test.task == "multi_label":
        # Per label: how many examples change their decision, against how many carry it; and
        # each label's F1 (the paper's per-class score for multi-label; accuracy hides rare labels).
        dp = model_predictions(d.logits, test.task, d.thresholds)
        pp = model_predictions(p.logits, test.task, p.thresholds)
        return {"chi2": None, "p_value": None, "dof": None, "score": "f1",
                "pie_counts": (result.modal["dense"].label != result.modal[group].label).sum(0).tolist(),
                "data_counts": test.labels.sum(0).astype(int).tolist(),
                "dense_f1_per_class": cls.per_label_f1(test.labels, dp)[0].tolist(),
                "pruned_f1_per_class": cls.per_label_f1(test.labels, pp)[0].tolist()}
    n_classes = d.logits.shape[-1]
    test_res = cls.class_distribution_test(test.labels, pie, n_classes)
    acc = cls.per_class_accuracy(test.labels, model_predictions(d.logits), model_predictions(p.logits),
                                 n_classes=n_classes)
    return {"chi2": test_res["stat"], "p_value": test_res["p_value"], "dof": test_res["dof"], "score": "accuracy",
            "pie_counts": test_res["table"]["n_pies"].tolist(), "data_counts": test_res["table"]["n"].tolist(),
            "dense_acc_per_class": acc["dense_acc"].tolist(), "pruned_acc_per_class": acc["pruned_acc"].tolist()}


def pie_examples(result: CompareResult, texts: pd.DataFrame, label_names: list[str], per_group: int = 20) -> pd.DataFrame:
    """Up to `per_group` PIEs per group, the most confidently flipped first."""
    multi = result.stacked.task == "multi_label"

    def name(label) -> str:
        if multi:
            return ", ".join(label_names[i] for i in np.flatnonzero(label)) or "(none)"
        return label_names[int(label)] if 0 <= int(label) < len(label_names) else str(label)

    gold_col = "labels" if multi else "label"
    by_id = texts.set_index(texts["example_id"].astype(str))
    rows = []
    pies = result.pies[result.pies["is_pie"]]
    for group, df in pies.groupby("group", sort=True):
        top = df.sort_values(["pruned_votes", "dense_votes", "example_id"], ascending=[False, False, True]).head(per_group)
        for r in top.itertuples():
            t = by_id.loc[r.example_id]
            pair = t.get("text_pair") if "text_pair" in by_id else None
            rows.append({"group": group, "example_id": r.example_id, "text": str(t["text"]),
                         "text_pair": None if pair is None or pd.isna(pair) else str(pair),
                         "gold": name(t[gold_col]), "dense_label": name(r.dense_label),
                         "pruned_label": name(r.pruned_label), "dense_votes": float(r.dense_votes),
                         "pruned_votes": float(r.pruned_votes)})
    cols = ["group", "example_id", "text", "text_pair", "gold", "dense_label", "pruned_label", "dense_votes",
            "pruned_votes"]
    return pd.DataFrame(rows, columns=cols)


def analyse(test: Stacked | CompareResult, texts: pd.DataFrame, *, train: Stacked | None = None,
            snapshot: Stacked | None = None, snapshot_name: str = "train@epoch1", label_names: list[str],
            meta: dict, n_boot: int = 200, seed: int = 0,
            progress: bool = True, floor: dict | None = None, rules: dict | None = None) -> tuple[dict, pd.DataFrame, pd.DataFrame]:
    """(analysis.json dict, complexity.parquet frame, pie_examples.parquet frame).

    `test` is the stacked split, or its `pies.compare` result when the caller has one already
    (then nothing is recomputed). `texts` is the dataset split, aligned here by example_id.
    Influence needs `train` (final train-split predictions) and `snapshot` (`train@epoch<k>`)
    with a dense group; otherwise it is {}. Complexity is measured once per text. `rules`
    (compare.claims: n_splits, n_resamples) sizes the held-out claim statistics."""
    result = test if isinstance(test, CompareResult) else compare(test, min_seeds=1)
    test = result.stacked
    groups = sorted(result.flags)
    dense = test.groups["dense"]
    aligned = texts.set_index(texts["example_id"].astype(str)).reindex(test.example_ids)
    if aligned["text"].isna().any():
        missing = test.example_ids[aligned["text"].isna().to_numpy()][0]
        raise PieError(f"example_id {missing} of the predictions is not in the dataset split; "
                       f"predictions and data come from different versions")
    measures = cx.measure(cx.joined_texts(aligned.reset_index(drop=True)))
    if floor is not None and floor.get("share") is not None:
        # summary.json's floor (group_stats.noise_floor_at), so both files give the same numbers.
        floor = {"k": floor["seeds_per_side"], "floor_share": floor["share"], "floor_low": floor["ci"][0],
                 "floor_high": floor["ci"][1]}
    else:
        floor = st.noise_floor(dense, test.task, n_boot, seed)
    from pie_mlops.config.schema import defaults  # the claims' defaults (n_splits, n_resamples, n_perm): one source

    rules = {**defaults("compare")["claims"], **(rules or {})}
    n_train = None if train is None else len(train.example_ids)
    out = {"meta": {**meta, "task": test.task, "label_names": list(label_names), "n_examples": len(test.example_ids),
                    "n_dense_models": len(dense.seeds), "groups": groups, "n_train_examples": n_train},
           "influence": {}, "classes": {}, "complexity": {}, "stability": {}, "heldout": {},
           "noise_floor": {**floor, "groups": {}}, "overlap": st.overlap_matrix(result.flags)}
    for i, group in enumerate(tqdm(groups, desc="analyse groups", disable=progress_disabled(progress))):
        pruned, pie = test.groups[group], result.flags[group]
        if train is not None and snapshot is not None:
            inf = influence(group, train, snapshot, snapshot_name, int(rules["n_perm"]), [seed, i, 4])
            if inf:
                out["influence"][group] = inf
        out["classes"][group] = class_section(result, group)
        if test.task != "multi_label":
            out["classes"][group]["cramers_v"] = cls.cramers_v(test.labels, pie, dense.logits.shape[-1],
                                                               int(rules["n_resamples"]), seed + i)
        out["heldout"][group] = {
            "half_split": ho.half_split(dense, pruned, test.labels, test.task, n_splits=int(rules["n_splits"]),
                                        n_boot=int(rules["n_resamples"]), seed=seed + i,
                                        n_classes=dense.logits.shape[-1]),
            "overall_drop": ho.overall_drop(dense, pruned, test.labels, test.task,
                                            n_boot=int(rules["n_resamples"]), seed=seed + i)}
        out["complexity"][group] = cx.compare_pies(measures, pie)
        out["stability"][group] = st.stability_curve(dense, pruned, test.task, n_boot=min(n_boot, 100), seed=seed + i)
        out["noise_floor"]["groups"][group] = st.group_against_floor(dense, pruned, test.task, floor, n_boot, seed + i)
    out["vs_dense_long"] = vs_dense_long(test, groups, rules, seed)
    complexity = pd.concat([pd.DataFrame({"example_id": test.example_ids}), measures], axis=1)
    return clean(out), complexity, pie_examples(result, texts, list(label_names))
