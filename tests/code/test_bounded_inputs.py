"""Bounded inputs (issue 30 §3): `import` streams within import.max_bytes / max_ratio /
max_line_bytes, a gzip bomb stays far under 500 MB RSS, and a params file that is too large
or expands through YAML aliases is refused in under a second."""

from __future__ import annotations

import gzip
import os
import subprocess
import sys
import time
import zlib
from pathlib import Path

import pytest

from pie_mlops.util.errors import PieError
from pie_mlops.stages.importer import import_dataset

BIN = Path(sys.executable).parent
SPLIT = {"validation_frac": 0.1, "test_frac": 0.2, "seed": 0}
ROW = b"a perfectly ordinary review of a film,pos\n"


def _bomb(path: Path, total: int) -> Path:
    """A valid CSV (a header and one row repeated) of `total` bytes, gzip-compressed ~1000:1."""
    chunk = ROW * (2**20 // len(ROW))
    comp = zlib.compressobj(9, zlib.DEFLATED, 31)  # wbits 31: the gzip container
    with open(path, "wb") as out:
        out.write(comp.compress(b"text,label\n"))
        for _ in range(total // len(chunk)):
            out.write(comp.compress(chunk))
        out.write(comp.flush())
    return path


def _import(path: Path, tmp_path: Path, **limits) -> Path:
    from pie_mlops.config.schema import defaults

    return import_dataset(str(path), split_params=SPLIT, name="bomb", text_col="text", label_col="label",
                          data_dir=tmp_path / "data", limits={**defaults("import"), **limits})


def test_a_gzip_bomb_is_one_line_and_stays_under_500_mb_rss(tmp_path):
    """The issue's case: ~1 MB of .csv.gz expanding to 600 MB reached 3.85 GB RSS before exit 2."""
    bomb = _bomb(tmp_path / "bomb.csv.gz", 600 * 2**20)
    assert bomb.stat().st_size < 2 * 2**20
    probe = ("import resource, subprocess, sys; p = subprocess.run(sys.argv[1:], capture_output=True, text=True); "
             "print(p.returncode); print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss); "
             "print(p.stderr, file=sys.stderr)")
    env = dict(os.environ, PATH=f"{BIN}{os.pathsep}{os.environ['PATH']}")
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", probe, str(BIN / "pie-mlops"), "import", str(bomb), "--name", "bomb",
                           "--text-col", "text", "--label-col", "label", "--data-dir", str(tmp_path / "data")],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    code, rss_kib = (int(v) for v in proc.stdout.split())
    lines = proc.stderr.strip().splitlines()
    assert code == 2 and len(lines) == 1 and "decompression bomb" in lines[0] and "bomb.csv.gz" in lines[0], lines
    assert rss_kib < 500 * 1024, f"peak RSS {rss_kib / 1024:.0f} MB"
    assert not (tmp_path / "data" / "bomb").exists()
    print(f"bomb refused in {time.perf_counter() - start:.1f} s at {rss_kib / 1024:.0f} MB peak RSS")


def test_max_bytes_caps_plain_and_decompressed_files(tmp_path):
    text = b"text,label\n" + b"".join(f"review {i} of a film,{'pos' if i % 2 else 'neg'}\n".encode()
                                       for i in range(5000))  # ~130 KB
    (tmp_path / "plain.csv").write_bytes(text)
    with pytest.raises(PieError, match=r"plain\.csv: .*over import\.max_bytes \(100,000 bytes\)"):
        _import(tmp_path / "plain.csv", tmp_path, max_bytes=100_000)
    (tmp_path / "packed.csv.gz").write_bytes(gzip.compress(text))
    with pytest.raises(PieError, match=r"packed\.csv\.gz: over import\.max_bytes .* once decompressed at line"):
        _import(tmp_path / "packed.csv.gz", tmp_path, max_bytes=100_000)
    assert _import(tmp_path / "packed.csv.gz", tmp_path).is_dir()  # within the default: imported


def test_an_endless_line_and_a_file_of_nul_bytes_are_refused(tmp_path):
    (tmp_path / "nul.csv").write_bytes(b"\0" * 300_000)
    with pytest.raises(PieError, match=r"nul\.csv: line 1 is longer than import\.max_line_bytes"):
        _import(tmp_path / "nul.csv", tmp_path, max_line_bytes=100_000)
    (tmp_path / "blank.jsonl").write_bytes(b"\n" * 300_000)
    with pytest.raises(PieError, match=r"blank\.jsonl: starts with over"):
        _import(tmp_path / "blank.jsonl", tmp_path, max_line_bytes=100_000)


def test_a_symlink_is_named_and_its_target_never_echoed(tmp_path):
    secret = tmp_path / "passwd"
    secret.write_text("root:x:0:0:root:/root:/bin/bash\n")
    (tmp_path / "link.csv").symlink_to(secret)
    with pytest.raises(PieError) as err:
        _import(tmp_path / "link.csv", tmp_path)
    assert "link.csv: a symbolic link" in str(err.value) and "root:x" not in str(err.value)


def _bomb_yaml(levels: int) -> str:
    """Under 1 KB: `levels` levels of nine aliases each inside tune.space (the issue's case)."""
    lines = ["tune:", "  space:", "    bert:", '      l0: &l0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    lines += [f"      l{k}: &l{k} [{', '.join([f'*l{k - 1}'] * 9)}]" for k in range(1, levels + 1)]
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize("levels", [6, 9])
def test_a_yaml_alias_bomb_is_refused_in_under_a_second(levels, tmp_path, capsys):
    from pie_mlops.cli import main

    path = tmp_path / "bomb.yaml"
    path.write_text(_bomb_yaml(levels))
    assert path.stat().st_size < 1024
    start = time.perf_counter()
    with pytest.raises(SystemExit) as exit_:
        main(["--params", str(path), "params"])
    took = time.perf_counter() - start
    err = capsys.readouterr().err.strip().splitlines()
    assert exit_.value.code == 2 and len(err) == 1 and "expands to over 100,000 values" in err[0], err
    assert took < 1.0, took


def test_an_oversized_or_recursive_params_file_is_refused(tmp_path, capsys):
    from pie_mlops.config.params import read_best_params
    from pie_mlops.config.plans import load_all

    big = tmp_path / "big.yaml"
    big.write_text("train:\n  seeds: [" + ", ".join(["0"] * 400_000) + "]\n")
    with pytest.raises(PieError, match=r"big\.yaml: [0-9,]+ bytes; a params file is at most 1,048,576"):
        load_all(big)
    loop = tmp_path / "best.yaml"
    loop.write_text("lr: &a [*a]\n")
    with pytest.raises(PieError, match="expands to over"):
        read_best_params(loop)


def test_a_full_disk_names_the_path_and_keeps_the_old_dataset(tmp_path):
    """docs/errors.md: a full disk is one line naming the path; the dataset written before stays."""
    import shutil

    if not shutil.which("unshare") or subprocess.run(["unshare", "-rm", "true"]).returncode != 0:
        pytest.skip("needs unshare -rm (a private mount namespace) for a small tmpfs")
    rows = "".join(f"review {os.urandom(150).hex()},{'pos' if i % 2 else 'neg'}\n" for i in range(4000))
    (tmp_path / "big.csv").write_text("text,label\n" + rows)  # 1.2 MB of random text: more than the disk holds
    (tmp_path / "small.csv").write_text("text,label\n" + "".join(rows.splitlines(keepends=True)[:20]))
    (tmp_path / "disk").mkdir()
    base = [str(BIN / "pie-mlops"), "import", "--name", "ds", "--text-col", "text", "--label-col", "label",
            "--data-dir", str(tmp_path / "disk" / "data")]
    script = (f"mount -t tmpfs -o size=384k tmpfs {tmp_path / 'disk'} && "
              f"{' '.join(base)} {tmp_path / 'small.csv'} >/dev/null && "
              f"cp -r {tmp_path / 'disk' / 'data'} {tmp_path / 'before'} && "
              f"{{ {' '.join(base)} --overwrite {tmp_path / 'big.csv'}; echo rc=$?; }} && "
              f"diff -r {tmp_path / 'before'} {tmp_path / 'disk' / 'data'} && echo same")
    env = dict(os.environ, PATH=f"{BIN}{os.pathsep}{os.environ['PATH']}")
    proc = subprocess.run(["unshare", "-rm", "sh", "-c", script], cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=300)
    lines = proc.stderr.strip().splitlines()
    assert "rc=2" in proc.stdout and "same" in proc.stdout, (proc.stdout, proc.stderr)
    assert len(lines) == 1 and "no space left on device" in lines[0] and str(tmp_path / "disk" / "data") in lines[0], lines
