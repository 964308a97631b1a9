"""Which reader a file needs, once it is known to be a file worth reading: present, not empty, not too big."""

from __future__ import annotations

from collections.abc import Generator
from pathlib import Path

from django.conf import settings

from .rows import Columns, FileRejected, Problem, Row
from .text_formats import read_csv, read_jsonl
from .workbook import read_xlsx, row_count_hint

READ_BLOCK = 1 << 20
FORMATS = {".xlsx": "xlsx", ".xlsm": "xlsx", ".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl"}


def file_kind(path: Path, name: str) -> str:
    """The format of the file ``name`` (as the user calls it) stored at ``path``; refused before any reading if it
    is missing, empty, larger than IMPORT_MAX_BYTES or of a kind we do not read."""
    if not path.exists():
        raise FileRejected(Problem(str(path), "no such file"))
    if not path.is_file():
        raise FileRejected(Problem(str(path), "not a file"))
    size = path.stat().st_size
    if size == 0:
        raise FileRejected(Problem(name, "the file is empty (0 bytes)"))
    if size > settings.IMPORT_MAX_BYTES:
        raise FileRejected(Problem(name, f"the file is {size:,} bytes; the limit is {settings.IMPORT_MAX_BYTES:,} "
                                   "bytes (IMPORT_MAX_MB): split it"))
    kind = FORMATS.get(Path(name).suffix.lower())
    if kind is None:
        raise FileRejected(Problem(name, f"not a spreadsheet: expected one of {', '.join(sorted(FORMATS))}"))
    return kind


def open_rows(path: Path, kind: str, name: str, sheets: list[str] | None,
              columns: Columns) -> Generator[Row, None, None]:
    if kind == "xlsx":
        return read_xlsx(path, name, sheets, columns)
    if sheets:
        raise FileRejected(Problem(name, "--sheet applies to xlsx workbooks only"))
    return read_csv(path, name, columns) if kind == "csv" else read_jsonl(path, name, columns)


def _lines(path: Path) -> int:
    lines = 0
    with path.open("rb") as handle:
        while block := handle.read(READ_BLOCK):
            lines += block.count(b"\n")
    return lines


def count_rows_hint(path: Path, sheets: list[str] | None, name: str | None = None) -> int | None:
    """A cheap estimate of the number of rows, for a progress bar (a quoted line break in a csv text counts twice);
    None when unknown. ``name`` is the file's name as the user gave it, when ``path`` is a stored upload."""
    try:
        kind = file_kind(path, name or path.name)
        if kind == "xlsx":
            return row_count_hint(path, name or path.name, sheets)
        return max(_lines(path) - (kind == "csv"), 0)
    except FileRejected:  # the import itself reports what is wrong
        return None
