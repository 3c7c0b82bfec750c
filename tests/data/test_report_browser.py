"""The PIE report in a real headless Chromium, with every hostname unresolvable: it renders
every figure and a non-blank page, so it needs nothing from the network."""

import os
import re
import shutil
import signal
import subprocess
from pathlib import Path

import numpy as np
import pytest

from compare_fixture import make_study
from pie_mlops.stages.compare_study import DEFAULTS, compare

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run",
         "--host-resolver-rules=MAP * ~NOTFOUND"]

pytestmark = pytest.mark.skipif(not Path(CHROMIUM).exists(),
                                reason="Debian's chromium is not installed (.ci/run installs it)")


def _chromium(args: list[str], profile: Path) -> str:
    proc = subprocess.Popen([CHROMIUM, *FLAGS, f"--user-data-dir={profile}", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, text=True, start_new_session=True)
    try:
        out, _ = proc.communicate(timeout=60)
    finally:  # Chromium leaves helper processes: stop the whole group
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    return out


def test_the_report_renders_every_figure_offline(tmp_path):
    data_dir, preds = make_study(tmp_path)
    params = dict(DEFAULTS, dataset="synthetic_nli", arch="bert", data_dir=str(data_dir), out=str(tmp_path / "out"),
                  split="test", n_boot=20)
    compare(params, preds, progress=False)
    index = tmp_path / "out" / "report" / "index.html"
    n_img = index.read_text().count("<img")
    assert n_img >= 6

    dom = _chromium(["--virtual-time-budget=5000", "--dump-dom", index.as_uri()], tmp_path / "p1")
    rendered = re.search(r'data-figures="(\d+)"', dom)
    assert rendered, "the page's load script did not run"
    assert int(rendered.group(1)) == n_img  # every embedded PNG decoded

    shot = tmp_path / "report.png"
    _chromium([f"--screenshot={shot}", "--window-size=1280,3000", index.as_uri()], tmp_path / "p2")
    from PIL import Image

    pixels = np.asarray(Image.open(shot).convert("L"), dtype=np.float64)
    assert pixels.shape == (3000, 1280)
    assert pixels.std() > 20 and (pixels < 128).mean() > 0.01  # text and plots, not a blank page
