import stat

import pytest

from pie_mlops.atomic import atomic_dir, atomic_file, write_text


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
