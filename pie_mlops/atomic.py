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
    """Remove temporaries of `path` left by dead processes of this host."""
    import socket

    host = socket.gethostname()
    for old in path.parent.glob(f".{path.name}.tmp-{host}-*"):
        pid = old.name[len(f".{path.name}.tmp-{host}-"):].split("-", 1)[0]
        try:
            os.kill(int(pid), 0)
            continue  # still writing
        except ProcessLookupError:
            pass
        except (ValueError, PermissionError, OverflowError):
            continue
        if old.is_dir():
            shutil.rmtree(old, ignore_errors=True)
        else:
            old.unlink(missing_ok=True)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextmanager
def atomic_file(path: str | Path) -> Iterator[Path]:
    """Yields a temporary path beside `path`; on success it replaces `path`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    _sweep(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.tmp-{_tag()}", dir=path.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; give the mode a new file gets
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
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
