import stat

import pytest

from pie_mlops.util.atomic import atomic_dir, atomic_file, write_text


def test_write_text_replaces_with_a_normal_mode_and_leaves_no_temp(tmp_path):
    target = tmp_path / "r.json"
    write_text(target, "old")
    write_text(target, "new")
    assert target.read_text() == "new"
    assert stat.S_IMODE(target.stat().st_mode) & 0o044  # readable by others, unlike mkstemp's 0600
    assert [p.name for p in tmp_path.iterdir()] == ["r.json"]


def test_failed_file_write_keeps_the_old_file(tmp_path):
    target = write_text(tmp_path / "r.json", "old")
    with pytest.raises(RuntimeError):
        with atomic_file(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("crash mid-write")
    assert target.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["r.json"]


def test_atomic_dir_swaps_whole_directories(tmp_path):
    final = tmp_path / "docs"
    with atomic_dir(final) as tmp:
        (tmp / "a.html").write_text("1")
    with pytest.raises(RuntimeError):
        with atomic_dir(final) as tmp:
            (tmp / "b.html").write_text("2")
            raise RuntimeError("crash")
    assert [p.name for p in final.iterdir()] == ["a.html"]
    with atomic_dir(final) as tmp:
        (tmp / "b.html").write_text("2")
    assert [p.name for p in final.iterdir()] == ["b.html"]
    assert [p.name for p in tmp_path.iterdir()] == ["docs"]
    assert stat.S_IMODE(final.stat().st_mode) & 0o055


def test_temporaries_of_killed_writers_are_swept_by_the_next_write(tmp_path):
    import os
    import socket
    import subprocess

    gone = subprocess.Popen(["true"])  # a process that has exited: its pid is free
    gone.wait()
    host = socket.gethostname()
    stale_file = tmp_path / f".out.parquet.tmp-{host}-{gone.pid}-abc"
    stale_dir = tmp_path / f".s0.tmp-{host}-{gone.pid}-xyz"
    live = tmp_path / f".out.parquet.tmp-{host}-{os.getpid()}-keep"
    other_host = tmp_path / f".out.parquet.tmp-elsewhere-{gone.pid}-keep"
    stale_file.write_text("half")
    stale_dir.mkdir()
    (stale_dir / "test.parquet").write_text("half")
    for p in (live, other_host):
        p.write_text("in progress")
    with atomic_file(tmp_path / "out.parquet") as tmp:
        tmp.write_text("whole")
    with atomic_dir(tmp_path / "s0") as tmp:
        (tmp / "test.parquet").write_text("whole")
    assert not stale_file.exists() and not stale_dir.exists()
    assert live.exists() and other_host.exists()  # a live writer, or another host's: not ours to judge
    assert (tmp_path / "out.parquet").read_text() == "whole"


def _killed_writer(target, when, fallback=False):
    """Fork a real process that replaces directory `target` with atomic_dir and SIGKILLs itself at
    `when`: "built" (new version complete, not yet swapped in), "swapped" (right after the swap,
    before the old version is removed), or "between" (fallback without RENAME_EXCHANGE: after the
    old version was moved aside, before the new one is in). Returns once it is dead."""
    import os
    import signal

    pid = os.fork()
    if pid == 0:  # the writer: it never returns
        try:
            import pie_mlops.util.atomic as atomic

            die = lambda *a, **k: os.kill(os.getpid(), signal.SIGKILL)  # noqa: E731
            if fallback:
                atomic._exchange = lambda a, b: False
            if when == "swapped":
                atomic._remove = die
            if when == "between":
                real = os.replace

                def replace(a, b):
                    real(a, b)
                    if ".old-" in str(b):  # the old version is aside, the new one not yet in
                        die()

                atomic.os.replace = replace
            with atomic.atomic_dir(target) as tmp:
                (tmp / "f.txt").write_text("new")
                if when == "built":
                    die()
        finally:
            os._exit(1)  # never reached when killed
    _, status = os.waitpid(pid, 0)
    assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL


@pytest.mark.parametrize("when, fallback, after", [
    ("built", False, "old"), ("swapped", False, "new"),
    ("built", True, "old"), ("between", True, "old"),
])
def test_a_writer_killed_in_any_window_leaves_old_or_new_and_the_next_start_sweeps(tmp_path, when, fallback, after):
    import os

    from pie_mlops.util.atomic import sweep

    target = tmp_path / "mine"
    target.mkdir()
    (target / "f.txt").write_text("old")
    _killed_writer(target, when, fallback)
    leftovers = [p.name for p in tmp_path.iterdir() if p.name != "mine"]
    assert leftovers and all(n.startswith(".mine.tmp-") or n.startswith(".mine.old-") for n in leftovers)
    if when != "between":  # the one window a filesystem without RENAME_EXCHANGE leaves open
        assert (target / "f.txt").read_text() == after
    else:
        assert not os.path.lexists(target)
    sweep(tmp_path)  # what `pie-mlops` does at start-up for data/
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mine"] and (target / "f.txt").read_text() == after


def test_a_symlinked_target_is_written_through_and_leaves_nothing_behind(tmp_path):
    real = tmp_path / "disk" / "mine"
    real.mkdir(parents=True)
    (real / "f.txt").write_text("old")
    link = tmp_path / "data" / "mine"
    link.parent.mkdir()
    link.symlink_to(real)
    with atomic_dir(link) as tmp:
        (tmp / "f.txt").write_text("new")
    write_text(tmp_path / "data" / "file-link", "x")
    (tmp_path / "data" / "f2").symlink_to(tmp_path / "data" / "file-link")
    write_text(tmp_path / "data" / "f2", "y")
    assert link.is_symlink() and (link / "f.txt").read_text() == "new"
    assert (tmp_path / "data" / "f2").is_symlink() and (tmp_path / "data" / "file-link").read_text() == "y"
    assert sorted(p.name for p in (tmp_path / "disk").iterdir()) == ["mine"]
    assert sorted(p.name for p in (tmp_path / "data").iterdir()) == ["f2", "file-link", "mine"]


def test_leftovers_are_dvcignored(tmp_path):
    import shutil

    from conftest import BIN, ROOT, run

    shutil.copy2(ROOT / ".dvcignore", tmp_path / ".dvcignore")
    run(["git", "init", "-q"], tmp_path)
    run([str(BIN / "dvc"), "init", "-q"], tmp_path)
    (tmp_path / ".dvcignore").write_text((ROOT / ".dvcignore").read_text())  # dvc init writes its own
    leftovers = ["data/.rotten_tomatoes.tmp-host-123-abc", "data/.bbc_news.old-host-9-def", "data/x/.s0.tmp-h-1-a"]
    proc = run([str(BIN / "dvc"), "check-ignore", *leftovers, "data/rotten_tomatoes"], tmp_path, check=False)
    assert proc.stdout.split() == leftovers  # ignored, and the dataset itself is not


def test_a_file_is_never_swapped_for_a_directory_nor_a_directory_for_a_file(tmp_path):
    from pie_mlops.util.errors import PieError

    mine = tmp_path / "mine"
    mine.write_text("a user's file")
    with pytest.raises(PieError, match="exists and is not a directory"):
        with atomic_dir(mine) as tmp:
            (tmp / "f.txt").write_text("new")
    (tmp_path / "d").mkdir()
    with pytest.raises(PieError, match="is a directory"):
        write_text(tmp_path / "d", "x")
    assert mine.read_text() == "a user's file" and sorted(p.name for p in tmp_path.iterdir()) == ["d", "mine"]


def test_pie_mlops_sweeps_data_at_start_up(tmp_path, monkeypatch):
    import socket
    import subprocess

    from pie_mlops.cli import main

    gone = subprocess.Popen(["true"])
    gone.wait()
    tag = f"{socket.gethostname()}-{gone.pid}"
    data = tmp_path / "data"
    (data / f".rt.tmp-{tag}-abc").mkdir(parents=True)  # a killed import's half-written dataset
    (data / f".bbc.old-{tag}-def").mkdir()  # killed between its renames: bbc itself is missing
    (data / f".bbc.old-{tag}-def" / "meta.json").write_text("{}")
    monkeypatch.chdir(tmp_path)
    main(["report", "--help"])  # any command: the sweep runs before it
    assert sorted(p.name for p in data.iterdir()) == ["bbc"] and (data / "bbc" / "meta.json").read_text() == "{}"
