"""Stage `prune`, quantized groups (prune.quantize): `quant-<method>`, one version per dense seed.

Seed s of `quant-int8-dyn` is the registered dense model `dense-s<s>` quantized by the recipe
(models/quantize.py), with no training, like an `os` group without recovery. It goes through the
same model-job protocol as every pruned (group, seed) (pie_mlops/jobs/protocol.py): its own run, tags
(`compression: quantization`, `method`, `bits`, `size_mb`), per-example predictions under
`predictions/<dataset>/<arch>/pruned/quant-<method>/s<seed>/`, CPU latency timed as a pruned
version's, and a registered pyfunc version under the alias `quant-<method>-s<seed>`.

The version is stored as its dense version plus the recipe: the dense weights as a delta naming
the dense version (nothing differs, so it holds no tensor) and `quantize: <method>` in the
model's config, which `load_model` applies at load. The metrics compare it with its dense model,
measured in the same process: `model_mb` and `dense_mb` (deployable weights), `latency_ms` and
`dense_latency_ms`, `size_ratio` and `latency_ratio` (dense / quantized).

A method the CPU has no kernels for (fp8 here) is skipped for that architecture with one line,
before any run starts: it registers nothing.
"""

from __future__ import annotations

import copy
from pathlib import Path

from pie_mlops.jobs.context import JobContext
from pie_mlops.jobs.orchestrate import Maker
from pie_mlops.jobs.protocol import Made, ModelJob, identity_tags, run_job
from pie_mlops.util.log import get as get_logger
from pie_mlops.config.vocabulary import QUANT_BITS, QUANT_PREFIX

_LOG = get_logger(__name__)


def quant_jobs(params: dict, name: str, seeds: list[int], md5: str, sha: str) -> list[ModelJob]:
    """Every (quant-<method>, seed) job of one architecture's params, seed-major (each seed's dense
    model is loaded once for all its methods)."""
    from pie_mlops import tracking
    from pie_mlops.util.fingerprint import code_fingerprint
    from pie_mlops.models.quantize import check_method
    from pie_mlops.config.params import as_list
    from pie_mlops.pruning.plan import predicted_splits
    from pie_mlops.jobs.prune_group import pruned_dir

    methods = [check_method(str(m)) for m in as_list(params.get("quantize") or [])]
    jobs = []
    for seed in sorted(seeds):
        for method in methods:
            group = QUANT_PREFIX + method
            plan = {k: params[k] for k in ("dataset", "arch", "predict_train", "predict_validation", "predict_test",
                                           "latency_batch", "max_train_examples")}
            plan.update(quantize=method, group=group)
            predicted_splits(plan)
            jobs.append(ModelJob(plan=plan, group=group, seed=seed, model_name=name, data_dir=str(params["data_dir"]),
                                 out_dir=pruned_dir(params, params["arch"]) / group / f"s{seed}",
                                 alias=tracking.alias_for(group, seed),
                                 tags=identity_tags("prune", plan, group, seed, data_md5=md5, git_sha=sha,
                                                    fingerprint=code_fingerprint(__name__), compression="quantization",
                                                    method=method, bits=QUANT_BITS[method], criterion="none",
                                                    schedule="none", scope="none", sparsity="0.0")))
    return jobs


class QuantJobs(Maker):
    """How prune makes its quantized jobs (jobs/orchestrate.py does the claim, the skip and the
    order): each here, made and tracked in place (no training to overlap). A method is probed on
    its first job; one that does not run on this CPU gets one line and one record, its other seeds
    none."""

    desc = "quantize"

    def __init__(self, params: dict, versions: dict, meta: dict, splits: dict, ctx: JobContext):
        self.params, self.versions, self.meta, self.splits, self.ctx = params, versions, meta, splits, ctx
        self.unsupported, self.probed = {}, set()

    def key(self, job: ModelJob) -> dict:
        return {"group": job.group, "seed": job.seed}

    def one(self, job: ModelJob) -> dict | None:
        method, seed = job.plan["quantize"], job.seed
        if method in self.unsupported:
            return None
        key = (job.model_name, seed, self.versions[seed].run_id)  # a run id is unique across stores
        why = None if method in self.probed else _why_not_runs(method, job.model_name, seed, key, self.versions[seed],
                                                               self.ctx, self.splits)
        self.probed.add(method)
        if why:
            self.unsupported[method] = why
            line = f"prune: {job.group} skipped for {self.params['arch']}: it does not run on this CPU ({why})"
            _LOG.warning(line)
            return {"group": job.group, "seed": seed, "status": "unsupported", "reason": line}
        return _quantize_one(job, self.meta, self.splits, self.ctx, key, self.versions[seed])


def _dense(name: str, seed: int, key: tuple, mv, ctx: JobContext, dst: Path) -> dict:
    """This seed's registered dense model, kept in the context across the seed's groups."""
    from pie_mlops.jobs.prune_group import load_dense

    if ctx.dense.get("key") != key:
        ctx.dense.clear()
        ctx.dense.update(load_dense(name, seed, dst, mv), key=key)
    return ctx.dense


def _why_not_runs(method: str, name: str, seed: int, key: tuple, mv, ctx: JobContext, splits: dict) -> str | None:
    """None if the method's quantized model predicts here, else why not (models/quantize.py)."""
    import tempfile

    from pie_mlops.models.quantize import quantize, why_not_runs
    from pie_mlops.jobs.training import predict_logits

    with ctx.compute(), tempfile.TemporaryDirectory(prefix="pie-dense-") as tmp:
        model = quantize(copy.deepcopy(_dense(name, seed, key, mv, ctx, Path(tmp))["model"]), method)
        probe = splits["test"].head(2)
        return why_not_runs(lambda: predict_logits(model, probe, device="cpu"))


def _quantize_one(job: ModelJob, meta: dict, splits: dict, ctx: JobContext, key: tuple, mv) -> dict:
    from pie_mlops.models.common import WEIGHTS_NAME, read_config, write_config
    from pie_mlops.models.quantize import QUANTIZE_KEY, model_mb, quantize
    from pie_mlops.models.sparse import write_delta
    from pie_mlops.pruning.apply import cpu_latency_ms
    from pie_mlops.pruning.plan import predicted_splits
    from pie_mlops.jobs.frames import predict_frames

    plan, seed, method = job.plan, job.seed, job.plan["quantize"]

    def start(staging: Path):
        return copy.deepcopy(_dense(job.model_name, seed, key, mv, ctx, staging / "dense")["model"])

    def make(run, fp32, staging: Path) -> Made:
        with ctx.compute():
            dense = ctx.dense
            batch = splits["test"].head(int(plan["latency_batch"]))
            saved = fp32.save(staging / "saved")  # the dense weights: stored as a delta naming the dense version
            write_config(saved, {**read_config(saved), QUANTIZE_KEY: method})
            if dense.get("ref"):
                write_delta(saved / WEIGHTS_NAME, dense["state"], dense["ref"])
            dense_mb, dense_ms = model_mb(fp32), cpu_latency_ms(fp32, batch)
            model = quantize(fp32, method)
            size, ms = model_mb(model), cpu_latency_ms(model, batch)
            threshold = _threshold(model, splits) if meta["task"] == "multi_label" else None
            frames = predict_frames(model, splits, predicted_splits(plan), group=job.group, seed=seed,
                                    threshold=threshold)
        stored = sum(f.stat().st_size for f in saved.rglob("*") if f.is_file()) / 2**20
        run.set_tags({"size_mb": f"{size:.3f}"})
        accounting = {"method": method, "bits": QUANT_BITS[method], "model_mb": size, "dense_mb": dense_mb,
                      "size_mb": stored, "latency_ms": ms, "dense_latency_ms": dense_ms,
                      "size_ratio": dense_mb / size, "latency_ratio": dense_ms / ms}
        return Made(model, frames, threshold=threshold, saved=saved, documents={"quantization.json": accounting},
                    metrics={k: v for k, v in accounting.items() if isinstance(v, (int, float))})

    record, made = run_job(job, make, ctx, task=meta["task"], label_names=meta["label_names"],
                           examples=splits["test"], start=start)
    acc = made.documents["quantization.json"]
    _LOG.info(f"{job.model_name} v{record['version']} ({job.group}-s{seed}): {acc['model_mb']:.1f} MB "
              f"({acc['size_ratio']:.2f}x smaller), {acc['latency_ms']:.1f} ms/batch ({acc['latency_ratio']:.2f}x)")
    return {"group": job.group, "seed": seed, "status": "quantized", **record, "model_mb": acc["model_mb"]}


def _threshold(model, splits: dict) -> float:
    """Multi-label: the decision threshold tuned on validation, as an os group without recovery."""
    from pie_mlops.util.metrics import sigmoid, tune_threshold
    from pie_mlops.jobs.training import predict_logits, targets

    return float(tune_threshold(targets(splits["validation"], "multi_label"),
                                sigmoid(predict_logits(model, splits["validation"]))))
