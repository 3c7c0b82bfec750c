"""A user's text file read line by line within bounds (issue 30): never a whole-file copy in memory.

- `max_bytes` caps the bytes read, after decompression: a larger file is one line, exit 2.
- A compressed file that expands more than `max_ratio` times (past the first 16 MiB) is refused
  as a decompression bomb before it is expanded: the convention of Apache POI's zip-bomb guard
  (100:1); real text compresses 3-20 times.
- A line longer than `max_line_bytes` (a file of NUL bytes, one endless line) is refused.
The limits come from the `import` params section (pie_mlops/config/schema.py).
"""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import zlib
from collections.abc import Iterator
from pathlib import Path

from pie_mlops.util.errors import PieError

OPENERS = {".gz": gzip.GzipFile, ".bz2": bz2.BZ2File, ".xz": lzma.LZMAFile}
RATIO_FLOOR = 16 * 2**20  # below this output a high ratio is harmless (a small, repetitive file)
_BROKEN = (OSError, EOFError, lzma.LZMAError, zlib.error, ValueError)  # each codec's "corrupt archive"


def _mib(n: int) -> str:
    return f"{n / 2**20:,.0f} MiB" if n >= 2**20 else f"{n:,} bytes"


def text_lines(p: Path, path: str, limits: dict) -> Iterator[str]:
    """The decoded lines of `p` (newlines kept; a leading BOM dropped); PieError naming `path`
    and the line for an empty file, a broken archive, a bad UTF-8 byte or a bound crossed."""
    max_bytes, max_ratio, max_line = (int(limits["max_bytes"]), float(limits["max_ratio"]),
                                      int(limits["max_line_bytes"]))
    try:
        raw = open(p, "rb")
    except OSError as exc:
        raise PieError(f"{path}: cannot read ({exc.strerror})") from None
    with raw:
        size = p.stat().st_size
        if size == 0:
            raise PieError(f"{path}: empty file (0 bytes)")
        opener = OPENERS.get(p.suffix.lower())
        if opener is None and size > max_bytes:
            raise PieError(f"{path}: {_mib(size)}, over import.max_bytes ({_mib(max_bytes)}); raise it in the "
                           f"params file if this data is meant")
        stream = (gzip.GzipFile(fileobj=raw) if opener is gzip.GzipFile else opener(raw)) if opener else raw
        out, number, blank = 0, 0, io.BytesIO()  # blank: leading whitespace-only lines, held back
        while True:
            try:
                line = stream.readline(max_line + 1)
            except _BROKEN as exc:
                raise PieError(f"{path}: cannot decompress ({str(exc).strip() or type(exc).__name__})") from None
            if not line:
                break
            number += 1
            out += len(line)
            if out > max_bytes:
                raise PieError(f"{path}: over import.max_bytes ({_mib(max_bytes)})"
                               f"{' once decompressed' if opener else ''} at line {number}; raise it in the "
                               f"params file if this data is meant")
            if opener and out > RATIO_FLOOR and out > max_ratio * raw.tell():
                raise PieError(f"{path}: expands more than {max_ratio:g} times (import.max_ratio): a decompression "
                               f"bomb, refused after {_mib(out)}")
            if len(line) > max_line:
                raise PieError(f"{path}: line {number} is longer than import.max_line_bytes ({_mib(max_line)}); "
                               f"not a text table")
            if number == 1:
                line = line.removeprefix(b"\xef\xbb\xbf")
            text = _decode(line, path, number)
            if blank is not None:
                if not text.strip():  # held, so that a file of blanks is "empty", not a header of spaces
                    if blank.tell() + len(line) > max_line:
                        raise PieError(f"{path}: starts with over {_mib(max_line)} of blank lines")
                    blank.write(line)
                    continue
                blank.seek(0)
                yield from (held.decode("utf-8") for held in blank)
                blank = None
            yield text
    if blank is not None:
        raise PieError(f"{path}: empty file (only whitespace)")


def _decode(line: bytes, path: str, number: int) -> str:
    try:
        return line.decode("utf-8")
    except UnicodeDecodeError as exc:
        column = len(line[:exc.start].decode("utf-8", errors="replace")) + 1
        raise PieError(f"{path}: line {number}: not valid UTF-8 (byte 0x{line[exc.start]:02x} at column {column}); "
                       f"re-save the file as UTF-8") from None
