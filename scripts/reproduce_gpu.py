"""The paper's grid on rotten_tomatoes on one GPU (issue 27 item 4), in calls of at most 10 minutes.

    .venv/bin/python scripts/reproduce_gpu.py OUT --dry-run     # ~2 minutes: a slice, then the projection
    .venv/bin/python scripts/reproduce_gpu.py OUT               # one call: chunks until --budget-s; rerun to go on

profiles/repro-gpu.yaml: both architectures, dense + the 8 paper methods x 5 sparsities x 30
seeds (2,460 models) and dense-long, seeds stacked (train.seed_parallel), data on the device.
A call runs chunks, one pipeline stage each (tune, train, then prune one method of one
architecture at one sparsity, its seeds together), and starts a chunk only when its
projected time (from the chunks measured so far, in OUT/progress.json) fits what is left of
--budget-s. After every chunk the finished models' logits go to OUT/predictions/ (float16,
pie_mlops/compare/committed.py; never rewritten), so a call that is cut off loses at most its chunk in
flight. The models themselves stay in this checkout's MLflow store (mlflow-gpu.db): a later
call on the same machine skips what is finished. When every chunk is done, a call compares
and collects into OUT (scripts/reproduce.py's layout). --profile swaps the grid (a tiny
profile tests the script on a CPU).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from pie_mlops.config.params import profile_path  # noqa: E402
from pie_mlops.config.plans import load_all  # noqa: E402


def one_arch(params_file, section: str, arch: str) -> dict:
    """One architecture's values of a section (config/plans.py; the tuned values are the run's business)."""
    from pie_mlops.config.plans import for_arch, resolve

    return for_arch(resolve(section, params_file), arch, tuned=False).model_dump()


def chunks(params: dict, params_file) -> list[dict]:
    """The grid as stage calls, in order, each with its model count and relative cost (epochs
    per model: dense E, dense-long and ft/wr 4E, ai E; os ~0)."""
    out = []
    for arch in params["study"]["arch"]:
        train, prune = one_arch(params_file, "train", arch), one_arch(params_file, "prune", arch)
        n = len(train["seeds"])
        out.append({"id": f"tune-{arch}", "args": ["tune", "-a", arch], "arch": arch, "models": 0, "epochs": 0})
        long = 4 if train.get("dense_long_epochs") else 0
        out.append({"id": f"train-{arch}", "args": ["train", "-a", arch], "arch": arch, "models": n * (2 if long else 1),
                    "epochs": n * (1 + long)})
        m = len(prune["seeds"])
        for method in prune["methods"]:  # one (method, sparsity) a chunk: its seeds, a few minutes on a GPU
            cost = {"ft": 4, "wr": 4, "ai": 1}.get(method.split("-")[1], 0.1)
            for sparsity in prune["sparsities"]:
                out.append({"id": f"prune-{arch}-{method}@{sparsity}", "arch": arch, "models": m, "epochs": m * cost,
                            "args": ["prune", "-a", arch, "-m", method, "--sparsities", str(sparsity)]})
    return out


def project(progress: dict, grid: list[dict]) -> dict:
    """Seconds per dense-epoch-equivalent per architecture (measured), and the grid's projection."""
    rate = {}
    for arch in {c["arch"] for c in grid}:
        done = [progress["done"][c["id"]] for c in grid if c["arch"] == arch and c["id"] in progress["done"] and c["epochs"]]
        slices = [s for s in progress.get("slice", {}).values() if s["arch"] == arch]
        spent = sum(d["seconds"] for d in done) + sum(s["seconds"] for s in slices)
        epochs = sum(d["epochs"] for d in done) + sum(s["epochs"] for s in slices)
        rate[arch] = spent / epochs if epochs else None
    left = [c for c in grid if c["id"] not in progress["done"]]
    known = all(rate[c["arch"]] is not None for c in left if c["epochs"])
    secs = sum(c["epochs"] * rate[c["arch"]] for c in left if c["epochs"]) if known else None
    return {"seconds_per_epoch_model": rate, "models_total": sum(c["models"] for c in grid),
            "models_left": sum(c["models"] for c in left), "projected_seconds_left": secs and round(secs),
            "projected_calls_left": secs and int(secs // 540) + 1}


def collect(params: dict, out: Path) -> None:
    """claims.json and each architecture's summary.json beside the logits, in scripts/reproduce.py's layout."""
    import shutil

    dataset = params["study"]["dataset"]
    root = ROOT / Path(params["compare"]["out"].split("{arch}")[0].format(dataset=dataset))
    for arch in params["study"]["arch"]:
        (out / dataset / arch).mkdir(parents=True, exist_ok=True)
        shutil.copy2(root / arch / "summary.json", out / dataset / arch / "summary.json")
    shutil.copy2(root / "claims.json", out / dataset / "claims.json")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out", help="folder for predictions, summaries and progress.json (created)")
    ap.add_argument("--profile", default="repro-gpu")
    ap.add_argument("--budget-s", type=float, default=540.0, help="stop starting chunks that would end after this")
    ap.add_argument("--dry-run", action="store_true", help="a slice (2 seeds: dense and one ai group per arch) and the projection")
    ap.add_argument("--store", default="sqlite:///mlflow-gpu.db", help="MLflow store of this grid's models")
    args = ap.parse_args()
    start = time.time()
    out = Path(args.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    params = load_all(profile_path(args.profile))
    grid = chunks(params, profile_path(args.profile))
    state = out / "progress.json"
    progress = json.loads(state.read_text()) if state.is_file() else {"done": {}, "slice": {}}
    env = dict(os.environ, MLFLOW_TRACKING_URI=os.environ.get("MLFLOW_TRACKING_URI", args.store))
    exe = str(Path(sys.executable).parent / "pie-mlops")

    def stage(argv: list[str]) -> float:
        t = time.time()
        subprocess.run([exe, "-q", "--profile", args.profile, *argv], cwd=ROOT, env=env, check=True)
        return time.time() - t

    def sync() -> None:
        from pie_mlops.compare.committed import expected_splits, sync as sync_models

        dataset = params["study"]["dataset"]
        for arch in params["study"]["arch"]:
            exp = expected_splits(one_arch(profile_path(args.profile), "train", arch),
                                  one_arch(profile_path(args.profile), "prune", arch))
            src = ROOT / params["prune"]["predictions_dir"] / dataset / arch
            sync_models(src, out / "predictions" / dataset / arch, exp,
                        frozenset({"validation"} - {params["compare"]["split"]}))

    def save() -> None:
        from pie_mlops.util.atomic import write_text

        progress["projection"] = project(progress, grid)
        write_text(state, json.dumps(progress, indent=2) + "\n")

    stage(["materialize"])
    if args.dry_run:  # two seeds of dense and of one ai group per architecture: the measured rate
        for arch in params["study"]["arch"]:
            prune = one_arch(profile_path(args.profile), "prune", arch)
            ai = next((m for m in prune["methods"] if m.endswith("-ai")), prune["methods"][0])
            stage(["tune", "-a", arch])
            secs = stage(["train", "-a", arch, "-s", "0,1"]) + stage(
                ["prune", "-a", arch, "-m", ai, "--sparsities", str(max(prune["sparsities"])), "-s", "0,1"])
            long = 4 if one_arch(profile_path(args.profile), "train", arch)["dense_long_epochs"] else 0
            progress["slice"][arch] = {"arch": arch, "seconds": round(secs, 1), "epochs": 2 * (1 + long) + 2}
        sync()
        save()
        print(json.dumps({"dry_run_s": round(time.time() - start), **progress["projection"]}))
        return 0
    for c in grid:
        if c["id"] in progress["done"]:
            continue
        rate = progress.get("projection", {}).get("seconds_per_epoch_model", {}).get(c["arch"])
        need = c["epochs"] * rate if rate else 0.0
        if time.time() - start + need > args.budget_s:
            print(f"stopping before {c['id']}: projected {need:.0f} s, {args.budget_s - (time.time() - start):.0f} s left")
            break
        secs = stage(c["args"])
        progress["done"][c["id"]] = {"seconds": round(secs, 1), "epochs": c["epochs"], "models": c["models"]}
        sync()
        save()
    else:
        for argv in (["compare"], ["report"]):
            stage(argv)
        collect(params, out)
        progress["finished"] = True
        save()
    print(json.dumps({"call_s": round(time.time() - start), **project(progress, grid)}))
    return 0


if __name__ == "__main__":
    from pie_mlops.util.errors import PieError

    try:
        sys.exit(main())
    except PieError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
    except subprocess.CalledProcessError as exc:
        print(f"error: {' '.join(map(str, exc.cmd[1:]))} exited {exc.returncode}; rerun to resume", file=sys.stderr)
        sys.exit(2)
