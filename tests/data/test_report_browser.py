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
from plans import plan
from pie_mlops.stages.compare_study import compare

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
    params = plan("compare", profile="default", dataset="synthetic_nli", arch="bert", data_dir=str(data_dir), out=str(tmp_path / "out"),
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


def test_the_compression_section_renders_in_the_browser(tmp_path):
    """Pruned and quantized groups side by side (issue 31): compare in file mode, the groups'
    sizes and latencies as the model runs log them (compression_table over run records), the
    report rendered again and opened in Chromium: the section, its figure and its tables."""
    import json

    from pie_mlops.analysis.compression import compression_table
    from pie_mlops.report.build import build_report

    data_dir, preds = make_study(tmp_path, extra={"quant-int8-dyn": 0.12, "quant-bf16": 0.1})
    params = plan("compare", profile="default", dataset="synthetic_nli", arch="bert", data_dir=str(data_dir), out=str(tmp_path / "out"),
                  split="test", n_boot=20)
    compare(params, preds, progress=False)
    out = tmp_path / "out"
    summary = {g: s for g, s in json.loads((out / "summary.json").read_text()).items() if g != "noise_floor"}
    assert {"quant-int8-dyn", "quant-bf16"} <= set(summary)
    assert json.loads((out / "compression.json").read_text())["groups"]["quant-bf16"]["model_mb"] is None
    sizes = {"magnitude-os@0.50": (45.0, 30.0), "random-os@0.90": (9.5, 30.0), "quant-int8-dyn": (22.0, 18.0),
             "quant-bf16": (43.4, 60.0)}
    runs = [{"group": g, "seed": s, "metrics": {"model_mb": mb, "latency_ms": ms, "dense_mb": 86.7,
                                                "dense_latency_ms": 30.0}} for g, (mb, ms) in sizes.items() for s in range(4)]
    table = compression_table(summary, runs)
    assert table["dense"] == {"model_mb": 86.7, "latency_ms": 30.0}
    assert {(m["quantized"], m["matched_on"], m["pruned"]) for m in table["matched"]} >= {
        ("quant-int8-dyn", "model_mb", "random-os@0.90"), ("quant-bf16", "model_mb", "magnitude-os@0.50")}
    (out / "compression.json").write_text(json.dumps(table))
    index = build_report([out], tmp_path / "report", title="compression", claims=False)
    html = index.read_text()
    assert 'id="compression"' in html and "At matched size and latency" in html
    n_img = html.count("<img")

    dom = _chromium(["--virtual-time-budget=5000", "--dump-dom", index.as_uri()], tmp_path / "p1")
    rendered = re.search(r'data-figures="(\d+)"', dom)
    assert rendered and int(rendered.group(1)) == n_img  # the compression figure decoded with the others
    section = dom[dom.index('id="compression"'):]
    assert "pruning against quantization" in section[:200]
    assert "quant-int8-dyn" in section and "random-os@0.90" in section and "<img" in section
