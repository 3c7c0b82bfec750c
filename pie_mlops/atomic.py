"""Atomic writes: build beside the target, then rename over it.

A reader (or a crash) never sees half a file or half a directory, and a failed write
leaves the previous version untouched. Every writer in the package goes through here.

Temporary names carry the writer's host and pid. A writer killed with SIGKILL cannot
remove its temporary; the next write to the same target removes those whose process is
gone, so a crash leaves no half-written file behind for long.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator


def _tag() -> str:
    import socket

    return f"{socket.gethostname()}-{os.getpid()}-"


def _sweep(path: Path) -> None:
    """Remove temporaries of `path` left by dead processes of this host.

    One `scandir` and a prefix test per entry: a glob would compile a fresh regex for every
    target name, which cost more than writing a small file (bench/compare_speed.py)."""
    import socket

    prefix = f".{path.name}.tmp-{socket.gethostname()}-"
    try:
        with os.scandir(path.parent) as entries:
            stale = [e.name for e in entries if e.name.startswith(prefix)]
    except FileNotFoundError:
        return
    for name in stale:
        pid = name[len(prefix):].split("-", 1)[0]
        try:
            os.kill(int(pid), 0)
            continue  # still writing
        except ProcessLookupError:
            pass
        except (ValueError, PermissionError, OverflowError):
            continue
        old = path.parent / name
        if old.is_dir():
            shutil.rmtree(old, ignore_errors=True)
        else:
            old.unlink(missing_ok=True)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _new_temp(path: Path) -> Path:
    """Create an empty temporary beside `path` with the mode a new file gets (0666 less the
    umask, applied by open itself): unlike mkstemp's 0600 it needs no chmod, and no umask
    round trip (which is process-wide and not thread-safe) to learn the mode."""
    tag = _tag()
    for _ in range(100):
        tmp = path.parent / f".{path.name}.tmp-{tag}{os.urandom(6).hex()}"
        try:
            os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0), 0o666))
        except FileExistsError:
            continue
        return tmp
    raise FileExistsError(f"no free temporary name beside {path}")


@contextmanager
def atomic_file(path: str | Path) -> Iterator[Path]:
    """Yields a temporary path beside `path`; on success it replaces `path`.

    No fsync: the rename makes the new version appear whole to every reader (and a failed
    write leaves the old one), which is what the pipeline relies on. Surviving a power
    loss is not promised: every file written here is re-derivable by re-running its stage,
    and on ext4 (data=ordered, auto_da_alloc) a rename over an existing file flushes its
    data first anyway. An fsync would add ~2 ms to every file (430 kB measured on this
    project's machine, where a prediction file takes ~7 ms to build and write)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    _sweep(path)
    tmp = _new_temp(path)
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_text(path: str | Path, text: str) -> Path:
    with atomic_file(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(path)


@contextmanager
def atomic_dir(path: str | Path) -> Iterator[Path]:
    """Yields an empty temporary directory beside `path` (absolute); on success it replaces
    `path`, the old version moved aside first and removed only once the new one is in."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    _sweep(path)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.tmp-{_tag()}", dir=path.parent)).resolve()
    try:
        yield tmp
        os.chmod(tmp, 0o777 & ~_umask())  # mkdtemp makes 0700
        backup = None
        if path.exists():
            backup = path.with_name(f".{path.name}.old-{os.getpid()}")
            os.replace(path, backup)
        os.replace(tmp, path)
        if backup is not None:
            shutil.rmtree(backup)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def staging_dir(path: str | Path) -> Path:
    """A temporary directory beside `path` for a write of several steps (the caller renames
    its files into place and removes it); stale ones of killed writers are swept first."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    _sweep(path)
    return Path(tempfile.mkdtemp(prefix=f".{path.name}.tmp-{_tag()}", dir=path.parent))
