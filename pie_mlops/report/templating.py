"""Jinja2 for every HTML page we write: templates in pie_mlops/report/templates, autoescape on,
so a value from the data (ids, texts, labels, messages) is escaped by the engine, never by hand."""

from __future__ import annotations

from functools import lru_cache


@lru_cache(maxsize=1)
def environment():
    """The one Environment (templates compile once per process)."""
    from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

    return Environment(loader=PackageLoader("pie_mlops.report", "templates"),
                       autoescape=select_autoescape(default=True, default_for_string=True),
                       undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)


def render(name: str, **values) -> str:
    """A whole page, ending in one newline."""
    return environment().get_template(name).render(**values).rstrip("\n") + "\n"


def blocks():
    """The macros of blocks.html.j2 (section, table, img, examples), callable from Python."""
    return environment().get_template("blocks.html.j2").module
