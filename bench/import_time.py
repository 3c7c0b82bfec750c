"""CLI start-up time: median wall time of `pie-mlops --help` (goal: under 1.5 s).

Heavy libraries load lazily inside the commands, so `--help` should cost little more than
starting Python. Run from the repository root with the project's venv:
    .venv/bin/python bench/import_time.py [--runs 15]
Last stdout line: {"help_seconds": ...} (docs/design.md §6).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

BIN = Path(sys.executable).parent


def wall(cmd: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=15, help="timed runs per command (after one warm-up)")
    args = parser.parse_args()
    cli = str(BIN / "pie-mlops")
    cases = {
        "python -c pass (floor)": [sys.executable, "-c", "pass"],
        "pie-mlops --help": [cli, "--help"],
        "pie-mlops materialize --help": [cli, "materialize", "--help"],
        "pie-mlops import --help": [cli, "import", "--help"],
        "pie-mlops check --help": [cli, "check", "--help"],
        "import great_expectations (what lazy loading avoids)": [sys.executable, "-c", "import great_expectations"],
    }
    times: dict[str, list[float]] = {name: [] for name in cases}
    for cmd in cases.values():
        wall(cmd)  # warm the page cache and .pyc files
    for _ in range(args.runs):  # interleaved, so machine noise hits every case alike
        for name, cmd in cases.items():
            times[name].append(wall(cmd))
    print(f"{'command':<55} {'median s':>9} {'min s':>7} {'max s':>7}")
    for name, ts in times.items():
        print(f"{name:<55} {statistics.median(ts):>9.3f} {min(ts):>7.3f} {max(ts):>7.3f}")
    help_s = statistics.median(times["pie-mlops --help"])
    print(f"goal: pie-mlops --help < 1.5 s -> {'met' if help_s < 1.5 else 'NOT met'} ({os.cpu_count()} cores)")
    print(json.dumps({"help_seconds": round(help_s, 4)}))


if __name__ == "__main__":
    main()
