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
