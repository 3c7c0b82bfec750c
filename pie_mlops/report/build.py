"""The HTML report over comparisons: find `<dataset>/<arch>/` directories, render, write atomically.

The `report` stage (stages/report.py) runs it over a whole compare root; `compare` (and its
gate, for a stopped architecture) over one directory.
"""

from __future__ import annotations

from pathlib import Path

from pie_mlops.config.vocabulary import check_name
from pie_mlops.util.errors import PieError


def find_compare_dirs(root: str | Path) -> list[Path]:
    root = Path(root)
    found = sorted(p.parent for p in root.glob("*/*/summary.json"))
    if not found:
        found = sorted(p.parent for p in root.rglob("summary.json") if (p.parent / "analysis.json").is_file())
    if not found:
        raise PieError(f"{root}: no comparison found (expected <dataset>/<arch>/summary.json); "
                       f"run `pie-mlops compare` first")
    return found


def find_claims(dirs: list[Path]) -> list[dict]:
    """The claims.json beside the compare directories (`<dataset>/claims.json`), one per dataset."""
    import json

    found = []
    for path in sorted({Path(d).parent / "claims.json" for d in dirs} | {Path(d) / "claims.json" for d in dirs}):
        if path.is_file():
            try:
                found.append(json.loads(path.read_text(encoding="utf-8")))
            except ValueError as exc:
                raise PieError(f"{path}: malformed JSON ({exc}); re-run `pie-mlops compare`") from None
    return found


def build_report(compare_dirs: list[Path] | Path, out_dir: str | Path = "reports/pies", title: str | None = None,
                 claims: bool = True) -> Path:
    """Write `out_dir/index.html` and `out_dir/figures/*.png` atomically; return the index path.
    `claims`: show each dataset's claims.json first (off for a compare's own per-arch page,
    written before the claims of all architectures are)."""
    from pie_mlops.util.atomic import atomic_dir
    from pie_mlops.report.pies import Study, render

    dirs = find_compare_dirs(compare_dirs) if isinstance(compare_dirs, (str, Path)) else list(compare_dirs)
    studies = [Study(d) for d in dirs]  # reads and checks everything before writing anything
    for s in studies:  # their names become figure file names and page text
        check_name("dataset", s.meta.get("dataset"), f"{s.path}/analysis.json meta")
        check_name("arch", s.meta.get("arch"), f"{s.path}/analysis.json meta")
        for group in s.summary:
            check_name("group", group, f"{s.path}/summary.json")
    html, figures = render(studies, title or "PIEs: what pruning breaks", find_claims(dirs) if claims else [])
    out = Path(out_dir)
    with atomic_dir(out) as tmp:
        (tmp / "figures").mkdir()
        for name, data in figures.items():
            (tmp / "figures" / name).write_bytes(data)
        (tmp / "index.html").write_text(html, encoding="utf-8")
    return out / "index.html"
