"""Ordinary failures exit 2 with one line (issue 17, items 10 and 12), through the real CLI on
real files; an internal error exits 3 with its traceback; paths never leave their root."""

import os
import subprocess
import sys

import pytest

from conftest import ROOT
from pie_mlops.cli import main


def _cli(*args, cwd=None, timeout=60):
    """`python -m pie_mlops.cli ARGS` in a real process (a hang is a failure, not a stuck test)."""
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.run([sys.executable, "-m", "pie_mlops.cli", *args], cwd=cwd or ROOT, env=env,
                          capture_output=True, text=True, timeout=timeout)


def _exit(args, capsys):
    """(exit code, stderr lines) of `pie-mlops ARGS` run in this process."""
    with pytest.raises(SystemExit) as exc:
        main(list(args))
    return exc.value.code, capsys.readouterr().err.strip().splitlines()


def _csv(path, rows=40):
    path.write_text("text,label\n" + "".join(f"example number {i},{'ab'[i % 2]}\n" for i in range(rows)))
    return path


IMPORT = ("--name", "mine", "--text-col", "text", "--label-col", "label")


def test_help_documents_the_exit_codes():
    out = _cli("--help").stdout
    assert "Exit codes: 0 ok; 1 a gate or check failed" in out and "3 internal error" in out


def test_a_fifo_as_input_exits_2_at_once(tmp_path):
    fifo = tmp_path / "in.csv"
    os.mkfifo(fifo)
    proc = _cli("import", str(fifo), *IMPORT, "--data-dir", str(tmp_path / "data"), timeout=30)
    assert proc.returncode == 2 and proc.stderr.strip() == f"error: {fifo}: not a regular file (a pipe, socket or device); give a data file"


def test_a_fifo_among_the_prediction_files_exits_2_at_once(tmp_path):
    (tmp_path / "preds").mkdir()
    fifo = tmp_path / "preds" / "dense_s0.parquet"
    os.mkfifo(fifo)
    proc = _cli("compare", "--predictions", str(tmp_path / "preds"), "--out", str(tmp_path / "out"), timeout=30)
    assert proc.returncode == 2 and proc.stderr.strip().startswith(f"error: {fifo}: not a regular file")


def test_an_unreadable_input_file_exits_2(tmp_path):
    # A file this user cannot read (as root: without the capability to ignore modes). Not a link
    # to an unreadable /proc file any more: a link is refused by its name (issue 30 §8).
    data = tmp_path / "in.csv"
    data.write_text("text,label\na,0\nb,1\n")
    data.chmod(0)
    drop = ["setpriv", "--bounding-set=-dac_override,-dac_read_search", "--"] if os.geteuid() == 0 else []
    proc = subprocess.run([*drop, sys.executable, "-m", "pie_mlops.cli", "import", str(data), *IMPORT,
                           "--data-dir", str(tmp_path / "data")], cwd=tmp_path, capture_output=True, text=True,
                          timeout=60, env=dict(os.environ, PYTHONPATH=str(ROOT)))
    err = proc.stderr.strip().splitlines()
    assert proc.returncode == 2 and len(err) == 1 and err[0] == f"error: {data}: cannot read (Permission denied)", err


def test_an_unwritable_data_dir_exits_2_and_writes_nothing(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    code, err = _exit(["import", str(_csv(tmp_path / "in.csv")), *IMPORT, "--data-dir", str(blocker / "data")], capsys)
    assert code == 2 and len(err) == 1 and "cannot create the directory" in err[0] and str(blocker) in err[0]
    assert blocker.read_text() == "not a directory"


@pytest.mark.parametrize("text, message", [
    ("- a\n- b\n", "must be a mapping of sections (materialize:, train:, ...), not a list"),
    ("42\n", "must be a mapping of sections"),
    ("prune:\n  batch_size: abc\n", "prune.batch_size: Input should be a valid integer"),
    ("compare:\n  export_pies: maybe\n", "compare.export_pies: Input should be a valid boolean"),
])
def test_a_malformed_params_file_exits_2(tmp_path, capsys, text, message):
    params = tmp_path / "p.yaml"
    params.write_text(text)
    args = ["compare", "--data-dir", str(tmp_path)] if "compare" in text else ["prune"]
    code, err = _exit(["--params", str(params), *args], capsys)
    assert code == 2 and len(err) == 1 and message in err[0] and str(params) in err[0]


@pytest.mark.parametrize("name", ["../params", "/etc/passwd", "tiny/../tiny", "..", "a/b"])
def test_a_profile_is_a_name_never_a_path(name, capsys):
    code, err = _exit(["--profile", name, "compare", "--help"], capsys)
    assert code == 2 and len(err) == 1 and "a profile is a name" in err[0] and "--params FILE" in err[0]


def test_an_arch_outside_the_vocabulary_never_becomes_a_path(tmp_path, capsys):
    out = tmp_path / "reports" / "{arch}"
    code, err = _exit(["compare", "--arch", "../../..", "--out", str(out), "--data-dir", str(tmp_path)], capsys)
    assert code == 2 and len(err) == 1 and "compare.arch.0 (--arch): Input should be 'bert' or 'bilstm'" in err[0]
    assert list(tmp_path.iterdir()) == []


def test_an_internal_error_exits_3_with_its_traceback(tmp_path, capsys, monkeypatch):
    import pie_mlops.stages.report as report

    def bug(params):
        raise ZeroDivisionError("a bug")

    monkeypatch.setattr(report, "report", bug)  # stands in for any bug in a stage
    code, err = _exit(["report", "--out", str(tmp_path)], capsys)
    assert code == 3 and err[0] == "Traceback (most recent call last):" and "ZeroDivisionError: a bug" in err
    assert "internal error (exit 3)" in err[-1]


def test_a_permission_error_is_one_line_with_its_file_not_a_bug(tmp_path, capsys, monkeypatch):
    import pie_mlops.stages.report as report

    def denied(params):
        raise PermissionError(13, "Permission denied", str(tmp_path / "reports"))

    monkeypatch.setattr(report, "report", denied)  # what a write into a read-only directory raises
    code, err = _exit(["report", "--out", str(tmp_path)], capsys)
    assert code == 2 and err == [f"error: {tmp_path / 'reports'}: Permission denied"]
