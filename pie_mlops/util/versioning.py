"""DVC bookkeeping for data written by pie-mlops (the only module that drives DVC's API).

A fresh clone has `data.dvc` but an empty DVC cache, so after `pie-mlops materialize`
DVC would report the data as "not in cache" even when the bytes are identical. When the
new data matches the committed `.dvc` file exactly, we put it in the cache, and
`dvc status` is clean. When it differs, we change nothing: `dvc status` shows the change
and the user records it on purpose with `dvc add`.
"""

from __future__ import annotations

from pathlib import Path


def _tracking_file(data_dir: Path) -> tuple[Path, Path] | None:
    """(repo root, .dvc file) if `data_dir` is tracked by `<data_dir>.dvc` inside a DVC repo."""
    data_dir = data_dir.resolve()
    dvcfile = data_dir.with_name(data_dir.name + ".dvc")
    if not dvcfile.is_file():
        return None
    for parent in data_dir.parents:
        if (parent / ".dvc").is_dir():
            return parent, dvcfile
    return None


def sync_dvc_cache(data_dir: str | Path) -> str:
    """Returns 'untracked', 'up to date', 'cached' (matched and now cached) or 'differs'.

    DVC's "not in cache" says nothing about the workspace (a fresh clone's cache is empty),
    so the workspace hash is compared with the committed one first: only identical data is
    committed, and a different version (a partial materialize, an import) never rewrites
    the `.dvc` file.
    """
    found = _tracking_file(Path(data_dir))
    if found is None:
        return "untracked"
    root, dvcfile = found
    from dvc.exceptions import DvcException
    from dvc.repo import Repo
    from scmrepo.exceptions import SCMError

    target = str(dvcfile.relative_to(root))
    try:
        repo = Repo(str(root))
    except (DvcException, SCMError):  # e.g. a copy of the project outside git: nothing to sync
        return "untracked"
    with repo:
        outs = [out for stage in repo.stage.collect(target) for out in stage.outs]
        if not outs or any(out.workspace_status() for out in outs):  # modified, deleted or new
            return "differs"
        if not any(out.changed_cache() for out in outs):
            return "up to date"
        repo.commit(target, force=True)  # the workspace hash equals the committed one: this only fills the cache
        return "cached"
