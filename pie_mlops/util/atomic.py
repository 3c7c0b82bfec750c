"""Atomic writes: build beside the target, then rename over it.

A reader (or a crash) never sees half a file or half a directory, and a failed write
leaves the previous version untouched. Every writer in the package goes through here.

A directory is swapped in with one atomic exchange (Linux renameat2 RENAME_EXCHANGE): the
target is the old or the new version at every instant, a SIGKILL anywhere included. Where
the exchange is unsupported, the old version is first moved aside to `.name.old-<host>-<pid>-*`;
a kill between that rename and the next leaves the target missing only until the next
start-up or write, which moves the old version back (`sweep`).

Temporaries carry the writer's host and pid. A writer killed with SIGKILL cannot remove its
temporary; `sweep` (at CLI start-up for the data directory, and before every write to the same
target) removes those whose process is gone. `.dvcignore` keeps them out of data.dvc's hash.
A target that is a symlink is written through: the link stays, its destination is replaced.
"""

from __future__ import annotations

import os
import shutil
import socket
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from pie_mlops.util.errors import PieError

_KINDS = (".tmp-", ".old-")


def _tag() -> str:
    return f"{socket.gethostname()}-{os.getpid()}-"


def _alive(pid: str) -> bool:
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except (ValueError, PermissionError, OverflowError):
        return True  # not ours to judge
    return True


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def sweep(directory: str | Path, name: str | None = None) -> None:
    """Clean up after dead writers of this host in `directory` (only those of target `name`, if
    given): remove their temporaries; move a moved-aside old version back if its target is
    missing, else remove it. One `scandir` and a prefix test per entry: a glob would compile
    a fresh regex for every target name, which cost more than writing a small file
    (bench/compare_speed.py)."""
    host = socket.gethostname()
    start = f".{name}." if name else "."
    try:
        with os.scandir(directory) as entries:
            names = [e.name for e in entries if e.name.startswith(start)]
    except (FileNotFoundError, NotADirectoryError):
        return
    for entry in names:
        for kind in _KINDS:
            at = entry.find(f"{kind}{host}-", 1)
            if at > 1 and (name is None or at == len(name) + 1):
                break
        else:
            continue
        pid = entry[at + len(kind) + len(host) + 1:].split("-", 1)[0]
        if _alive(pid):
            continue
        leftover, target = Path(directory) / entry, Path(directory) / entry[1:at]
        if kind == ".old-" and not os.path.lexists(target):
            os.replace(leftover, target)  # killed between its two renames: the old version returns
        else:
            _remove(leftover)


def _resolve(path: str | Path) -> Path:
    """The path a write replaces: a symlink's destination (the link itself stays)."""
    path = Path(path)
    if path.is_symlink():
        path = Path(os.path.realpath(path))
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise PieError(f"{path.parent}: cannot create the directory ({exc.strerror})") from None
    sweep(path.parent, path.name)
    return path


def _unwritable(path: Path, exc: OSError) -> PieError:
    return PieError(f"{path.parent}: cannot write {path.name} there ({exc.strerror})")


def _full(path: Path, exc: BaseException) -> PieError | None:
    """A full disk or quota met while writing `path`: the error names it (a write() error names
    no file) and says the old version is kept; None for any other error."""
    import errno

    if not isinstance(exc, OSError):
        return None
    if exc.errno in (errno.ENOSPC, errno.EDQUOT) or "No space left on device" in str(exc):
        return PieError(f"{path}: cannot write it (no space left on device); the previous version, if any, is "
                        f"kept; free space and re-run")
    return None


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
        except OSError as exc:
            raise _unwritable(path, exc) from None
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
    path = _resolve(path)
    if path.is_dir():
        raise PieError(f"{path}: is a directory; a file is written there")
    tmp = _new_temp(path)
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException as exc:
        tmp.unlink(missing_ok=True)
        if (full := _full(path, exc)) is not None:
            raise full from None
        raise


def write_text(path: str | Path, text: str) -> Path:
    with atomic_file(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(path)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _mkdtemp(path: Path) -> Path:
    try:
        return Path(tempfile.mkdtemp(prefix=f".{path.name}.tmp-{_tag()}", dir=path.parent)).resolve()
    except OSError as exc:
        raise _unwritable(path, exc) from None


def _exchange(a: Path, b: Path) -> bool:
    """Swap `a` and `b` in one atomic step (Linux renameat2 RENAME_EXCHANGE); False where the
    C library or the filesystem lacks it."""
    import ctypes
    import errno

    renameat2 = getattr(ctypes.CDLL(None, use_errno=True), "renameat2", None)
    if renameat2 is None:
        return False
    at_fdcwd, rename_exchange = -100, 2
    if renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP):
        return False
    raise OSError(err, os.strerror(err), str(b))


def _swap_in(tmp: Path, path: Path) -> None:
    """Make `tmp` the content of `path`; the old version is removed once the new one is in."""
    if not os.path.lexists(path):
        os.replace(tmp, path)
    elif not path.is_dir():  # never swap a user's file for a directory (and then delete it)
        raise PieError(f"{path}: exists and is not a directory; move it away or choose another path")
    elif _exchange(tmp, path):
        _remove(tmp)  # now the old version; a kill here leaves it to `sweep`
    else:
        backup = path.with_name(f".{path.name}.old-{_tag()}{os.urandom(6).hex()}")
        os.replace(path, backup)
        try:
            os.replace(tmp, path)  # a kill just before this: `sweep` moves the old one back
        except BaseException:
            os.replace(backup, path)
            raise
        _remove(backup)


@contextmanager
def atomic_dir(path: str | Path) -> Iterator[Path]:
    """Yields an empty temporary directory beside `path` (absolute); on success it replaces
    `path` in one step (see the module docstring)."""
    path = _resolve(path)
    tmp = _mkdtemp(path)
    try:
        yield tmp
        os.chmod(tmp, 0o777 & ~_umask())  # mkdtemp makes 0700
        _swap_in(tmp, path)
    except BaseException as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        if (full := _full(path, exc)) is not None:
            raise full from None
        raise


def staging_dir(path: str | Path) -> Path:
    """A temporary directory beside `path` for a write of several steps (the caller renames
    its files into place and removes it); stale ones of killed writers are swept first."""
    path = _resolve(path)
    return _mkdtemp(path)
