"""Run a reproduction and commit-ready its results under docs/results/<name>/.

    .venv/bin/python scripts/reproduce.py NAME PROFILE [PROFILE ...]
    .venv/bin/python scripts/reproduce.py NAME --collect-only PROFILE ...   # outputs already there
    .venv/bin/python scripts/reproduce.py NAME --sync [--commit] PROFILE ...  # logits so far (a run's loop)
    .venv/bin/python scripts/reproduce.py NAME --resume-plan PROFILE ...     # another machine: what is left

Each profile is one dataset's study (`pie-mlops --profile PROFILE study`, in this process's
venv, one after another). Afterwards docs/results/NAME/ holds, per dataset, claims.json, each
architecture's summary.json and the effective params, plus run.json (the exact command, wall
time, peak memory, machine, git commit) and README.md rendered from them
(pie_mlops/report/results.py). Long: run it in the background with nohup.

Every model's logits go to docs/results/NAME/predictions/<dataset>/<arch>/ (<dataset>@<profile>
for a profile in STORES: a second study of one dataset) (float16, the
pipeline's layout; pie_mlops/compare/committed.py), each model once, as soon as it is finished:
`--sync` exports the models finished so far and, with `--commit`, commits them, so a run that
is killed loses at most the models in flight. Collecting syncs a last time and checks that
file-mode compare on the committed logits gives every summary's pie_share exactly; a group
that does not (a mean-probability tie moved by float16) is rewritten in float32.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from pie_mlops.config.params import profile_path, render as render_params  # noqa: E402
from pie_mlops.config.plans import load_all  # noqa: E402
from pie_mlops.report.results import render  # noqa: E402
from pie_mlops.util.errors import PieError  # noqa: E402


# A profile whose registered model names repeat another's runs in its own MLflow store (repro-e's
# BiLSTM is named as repro's): scripts/reproduce_cpu.sh and the resume plan read it here.
STORES = {"repro-e": "sqlite:///mlflow-e.db"}


def store_prefix(profile: str) -> str:
    return f"MLFLOW_TRACKING_URI={STORES[profile]} " if profile in STORES else ""


def machine() -> str:
    import torch

    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor()) if Path("/proc/cpuinfo").exists() else ""
    dev = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU"
    return f"{os.cpu_count()} CPU cores ({cpu}), {dev}; Python {platform.python_version()}, torch {torch.__version__}"


def one_arch(params_file, section: str, arch: str) -> dict:
    """One architecture's values of a section (config/plans.py; the tuned values are the run's business)."""
    from pie_mlops.config.plans import for_arch, resolve

    return for_arch(resolve(section, params_file), arch, tuned=False).model_dump()


def result_keys(profiles: list[str]) -> dict[str, str]:
    """profile -> its folder under docs/results/NAME/: the dataset, or `<dataset>@<profile>` for a
    profile in STORES (a second study of a dataset: repro-e, claim (e)'s matched pair beside
    repro's BiLSTM). Fixed per profile, whichever profiles a command lists: `--sync repro-e` alone
    once filed repro-e under `rotten_tomatoes`, where repro's models of the same names live."""
    keys: dict[str, str] = {}
    for p in profiles:
        dataset = load_all(profile_path(p))["study"]["dataset"]
        keys[p] = f"{dataset}@{p}" if p in STORES else dataset
        if p not in STORES and (twin := next((q for q, k in keys.items() if k == dataset and q != p), None)):
            raise PieError(f"profiles {twin} and {p} both study {dataset}: run the second in a store of its "
                           f"own (scripts/reproduce.py STORES), which files it as {dataset}@{p}")
    return keys


def arch_roots(profiles: list[str]):
    """(source predictions root, result key, arch, expected split files, splits left out) of every architecture the profiles compare."""
    keys = result_keys(profiles)
    for p in profiles:
        params = load_all(profile_path(p))
        dataset, archs = params["study"]["dataset"], params["study"]["arch"]
        for arch in [archs] if isinstance(archs, str) else archs:
            from pie_mlops.compare.committed import expected_splits

            expected = expected_splits(one_arch(profile_path(p), "train", arch), one_arch(profile_path(p), "prune", arch))
            skip = frozenset({"validation"} - {params["compare"]["split"]})  # feeds nothing when test is compared
            yield ROOT / params["prune"]["predictions_dir"] / dataset / arch, keys[p], arch, expected, skip


def sync_logits(out: Path, profiles: list[str]) -> tuple[list, int]:
    """(the models exported now, how many committed files had their ids moved to the index)."""
    from pie_mlops.compare.committed import index_examples, sync

    new, moved = [], 0
    for src, dataset, arch, expected, skip in arch_roots(profiles):
        if (out / "predictions" / dataset / arch).is_dir():  # files committed with their ids (before the index, or
            n = index_examples(out / "predictions" / dataset / arch)  # by an older checkout): ids to the index
            moved += n
            if n:
                print(f"{dataset}/{arch}: moved the example ids of {n} committed file(s) into its _examples/ index")
        for e in sync(src, out / "predictions" / dataset / arch, expected, skip):
            new.append(e)
            if e.float32_splits:
                print(f"{dataset}/{arch}/{e.model_dir}: float16 would change a predicted label in "
                      f"{', '.join(e.float32_splits)}; kept float32 there", flush=True)
    return new, moved


def tuned_files(profiles: list[str]):
    """(profile, arch, the tuned file `tune` writes and train/prune read) of every trained architecture."""
    for p in profiles:
        params = load_all(profile_path(p))
        archs = params["study"]["arch"]
        for arch in [archs] if isinstance(archs, str) else archs:
            train = one_arch(profile_path(p), "train", arch)
            yield p, arch, ROOT / train["best_params"].format(dataset=train["dataset"], arch=arch)


def sync_tuned(out: Path, profiles: list[str]) -> list[Path]:
    """Copy each tuned file, once, to docs/results/NAME/tuned/: the models were trained with these
    values, so a resumed run on another machine must use them, not a new search's."""
    new = []
    for _, _, src in tuned_files(profiles):
        dst = out / "tuned" / src.name
        if src.is_file() and not dst.exists():
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dst)
            new.append(dst)
    return new


def restore_tuned(out: Path, profiles: list[str]) -> list[str]:
    """The resume plan's first lines: restore the committed tuned values, or tune where none are."""
    lines = []
    for p, arch, dst in tuned_files(profiles):
        src = out / "tuned" / dst.name
        rel_src, rel_dst = src.relative_to(ROOT) if src.is_relative_to(ROOT) else src, dst.relative_to(ROOT)
        if src.is_file() and not dst.is_file():
            lines.append(f"mkdir -p {rel_dst.parent} && cp {rel_src} {rel_dst}")
        elif src.is_file() and dst.read_bytes() != src.read_bytes():
            lines.append(f"# {rel_dst} differs from {rel_src}, which made the committed models: "
                         f"cp {rel_src} {rel_dst}")
        elif not dst.is_file():
            lines.append(f"{store_prefix(p)}pie-mlops --profile {p} tune -a {arch}")
    return lines


def resume_plan(out: Path, profiles: list[str]) -> list[str]:
    """On another machine (a fresh MLflow store), the commands that make only what is not committed
    under docs/results/NAME/predictions/. Dense models are trained again wherever a pruned model
    is missing (prune needs its seed's registered dense model); their committed logits stay.
    First, the tuned values the committed models used (docs/results/NAME/tuned/) are restored."""
    from pie_mlops.stages import prune
    from pie_mlops.compare.collect import local_models

    keys, lines = result_keys(profiles), []
    for p in profiles:
        params = load_all(profile_path(p))
        archs = params["study"]["arch"]
        for arch in [archs] if isinstance(archs, str) else archs:
            have = local_models(out / "predictions" / keys[p] / arch) or set()
            train, pruned = one_arch(profile_path(p), "train", arch), one_arch(profile_path(p), "prune", arch)
            dense, long = train["seeds"], train["dense_long_epochs"]
            todo = {}
            for job in prune.plan_jobs(pruned):
                seeds = [s for s in pruned["seeds"] if (job["group"], s) not in have]
                if seeds:
                    todo.setdefault(",".join(map(str, seeds)), []).append(job)
            need_dense = sorted({int(s) for k in todo for s in k.split(",")} |
                                {s for s in dense if ("dense", s) not in have or (long and ("dense-long", s) not in have)})
            if need_dense:
                lines.append(f"{store_prefix(p)}pie-mlops --profile {p} train -a {arch} -s {','.join(map(str, need_dense))}")
            for seeds, jobs in todo.items():
                for job in jobs:
                    lines.append(f"{store_prefix(p)}pie-mlops --profile {p} prune -a {arch} -m {job['criterion']}-{job['schedule']} "
                                 f"--sparsities {job['sparsity']} -s {seeds}")
    if not lines:
        return ["# every model of these profiles has its logits committed"]
    return restore_tuned(out, profiles) + lines


def commit_logits(out: Path, n: int, moved: int = 0) -> None:
    """Commit the new logits and tuned values (and nothing else): `git commit -- PATH` takes only those."""
    rels = [str((out / d).relative_to(ROOT)) for d in ("predictions", "tuned") if (out / d).is_dir()]
    subprocess.run(["git", "add", "--", *rels], cwd=ROOT, check=True)
    subprocess.run(["git", "commit", "-q", "-m", f"results {out.name}: logits of {n} more model(s)" + (f", ids of {moved} file(s) to the example index" if moved else ""), "--", *rels],
                   cwd=ROOT, check=True)


def check_logits(root: Path, summary: dict, compare: dict, src: Path) -> None:
    """File-mode compare on the committed logits must give every pie_share of `summary`."""
    from pie_mlops.compare.committed import reproduce_exactly

    fixed = reproduce_exactly(root, src, summary, compare["split"], int(compare["min_seeds"]), str(compare["tie_rule"]))
    if fixed:
        print(f"{root}: float16 logits moved pie_share of {', '.join(fixed)}; rewrote them (and dense) in float32")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("name")
    ap.add_argument("profiles", nargs="+")
    ap.add_argument("--collect-only", action="store_true", help="do not run; collect what the profiles wrote")
    ap.add_argument("--sync", action="store_true", help="only export the models finished so far (see --commit)")
    ap.add_argument("--commit", action="store_true", help="with --sync: git-commit the newly exported logits")
    ap.add_argument("--resume-plan", action="store_true",
                    help="print the stage commands that make only the models whose logits are not committed")
    ap.add_argument("--store-of", action="store_true",
                    help="print the MLflow tracking URI of the (one) profile given, empty for the default store")
    ap.add_argument("--command", help="with --collect-only: the command that ran the profiles (run.json)")
    ap.add_argument("--wall-s", type=float, help="with --collect-only: its wall time in seconds (run.json)")
    ap.add_argument("--peak-rss-gib", type=float, help="with --collect-only: its peak memory in GiB (run.json)")
    ap.add_argument("--notes", type=Path, metavar="FILE",
                    help="with --collect-only: run.json's notes (deviations, sittings), one per non-empty line of FILE")
    ap.add_argument("--readme", action="store_true",
                    help="with --collect-only: make this reproduction the README's opening (its verdicts block)")
    ap.add_argument("--pending", nargs="+", default=[], metavar="PROFILE",
                    help="with --collect-only: profiles of the same run still running; the listed ones are collected "
                         "now and run.json says the run is in progress (their logits stay as committed so far)")
    args = ap.parse_args()
    if args.pending and not args.collect_only:
        ap.error("--pending goes with --collect-only")
    if args.notes and not args.notes.is_file():
        raise PieError(f"--notes {args.notes}: no such file (one note per line)")
    if args.readme:
        from pie_mlops.report.results import readme_block

        if readme_block((ROOT / "README.md").read_text(encoding="utf-8")) is None:
            raise PieError("README.md: no `<!-- reproduction: begin NAME -->` block for --readme to fill")
    out = ROOT / "docs" / "results" / args.name
    exe = str(Path(sys.executable).parent / "pie-mlops")
    commands = [f"pie-mlops --profile {p} study" for p in args.profiles]
    if args.store_of:
        print(STORES.get(args.profiles[0], ""))
        return
    if args.resume_plan:
        for line in resume_plan(out, args.profiles):
            print(line)
        return
    if args.sync:
        new, moved = sync_logits(out, args.profiles)
        tuned = sync_tuned(out, args.profiles)
        if args.commit and (new or tuned or moved):
            commit_logits(out, len(new), moved)
        print(f"synced {len(new)} model(s) into {out / 'predictions'}")
        return
    start = time.time()
    if not args.collect_only:
        for p in args.profiles:
            print(f"== {p}", flush=True)
            subprocess.run([exe, "--profile", p, "study"], cwd=ROOT, check=True)
    wall = time.time() - start
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 2**20
    sync_logits(out, args.profiles)
    tmp = out.with_name(out.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:  # a failure (missing outputs, a bad profile) leaves no half-written NAME.tmp behind
        from pie_mlops.compare.committed import dense_gate

        datasets, gates = {}, {}
        keys = result_keys(args.profiles + args.pending)
        for p in args.profiles:
            params = load_all(profile_path(p))
            dataset, key = params["study"]["dataset"], keys[p]
            (tmp / f"params-{key}.yaml").write_text(render_params(params), encoding="utf-8")
            root = ROOT / Path(params["compare"]["out"].split("{arch}")[0].format(dataset=dataset))
            claims = json.loads((root / "claims.json").read_text())
            summaries, gates[key] = {}, {}
            for arch_dir in sorted(d for d in root.iterdir() if (d / "summary.json").is_file()):
                gates[key][arch_dir.name] = dense_gate(out / "predictions" / key / arch_dir.name,
                                                       float(params["compare"]["min_gain_over_baseline"]),
                                                       params["compare"]["split"])
                summaries[arch_dir.name] = json.loads((arch_dir / "summary.json").read_text())
                check_logits(out / "predictions" / key / arch_dir.name, summaries[arch_dir.name], params["compare"],
                             ROOT / params["prune"]["predictions_dir"] / dataset / arch_dir.name)
                (tmp / key / arch_dir.name).mkdir(parents=True, exist_ok=True)
                shutil.copy2(arch_dir / "summary.json", tmp / key / arch_dir.name / "summary.json")
            shutil.copy2(root / "claims.json", tmp / key / "claims.json")
            datasets[key] = {"claims": claims, "summaries": summaries}
        sha = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
        previous = json.loads((out / "run.json").read_text()) if args.collect_only and (out / "run.json").is_file() else {}
        if args.command or previous.get("status") == "running":  # a driver ran the profiles (scripts/reproduce_cpu.sh)
            previous, commands, wall, peak = {}, [args.command or previous["command"]], args.wall_s or 0.0, args.peak_rss_gib
        run = previous or {"command": " && ".join(commands), "wall_s": round(wall), "peak_rss_gib": None if peak is None else round(peak, 2),
                           "machine": machine(), "git_sha": sha, "finished": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}
        if args.pending:  # collected while the rest still runs: says so, and when
            pending = result_keys(args.profiles + args.pending)
            run.update(status="running", finished=None, collected=time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
                       pending=[pending[p] for p in args.pending])
        run["dense_gate"] = gates  # recomputed from the committed dense logits (tests/code/test_committed.py)
        if args.notes:
            run["notes"] = [line.strip() for line in args.notes.read_text(encoding="utf-8").splitlines() if line.strip()]
        (tmp / "run.json").write_text(json.dumps(run, indent=2) + "\n", encoding="utf-8")
        (tmp / "README.md").write_text(render(args.name, run, datasets), encoding="utf-8")
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    for kept in ("predictions", "tuned"):  # committed as the run went: kept, never rewritten
        if (out / kept).is_dir():
            (out / kept).rename(tmp / kept)
    shutil.rmtree(out, ignore_errors=True)
    tmp.rename(out)
    print(f"wrote {out}")
    if args.readme:
        from pie_mlops.report.results import write_opening

        write_opening(ROOT / "README.md", out)
        print(f"README.md: its opening now shows {out.name}")


if __name__ == "__main__":
    try:
        main()
    except PieError as exc:  # an unknown profile, a bad params file: one line, exit 2
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
    except (FileNotFoundError, subprocess.CalledProcessError) as exc:
        hint = " (run the profiles first, or drop --collect-only)" if isinstance(exc, FileNotFoundError) else ""
        print(f"error: {exc}{hint}", file=sys.stderr)
        sys.exit(2)
