"""What staff see of a file before importing it: its sheets and columns to choose from, and the first rows as the
chosen columns read them. Reading stops after those rows; ``check_corpus`` checks every row."""

from __future__ import annotations

from contextlib import closing
from dataclasses import dataclass
from itertools import islice
from pathlib import Path

from .readers import file_kind, open_rows
from .rows import Columns, FileRejected, Problem, Row
from .text_formats import csv_header, jsonl_keys
from .workbook import sheet_headers

PREVIEW_ROWS = 5


@dataclass(frozen=True)
class Preview:
    kind: str  # xlsx, csv or jsonl
    columns: dict[str, list[str]]  # each sheet's header ("" names the one table of a csv or jsonl file)
    rows: list[Row]  # the first rows, as the chosen sheets and columns read them
    problem: Problem | None = None  # why the file cannot be read as chosen (a missing column, a damaged row, ...)


def file_columns(path: Path, kind: str, name: str) -> dict[str, list[str]]:
    if kind == "xlsx":
        return sheet_headers(path, name)
    return {"": csv_header(path, name) if kind == "csv" else jsonl_keys(path, name)}


def preview_file(path: Path, name: str, *, sheets: list[str] | None = None, columns: Columns | None = None,
                 limit: int = PREVIEW_ROWS) -> Preview:
    """The file's columns and first ``limit`` rows; FileRejected when it cannot be read at all."""
    kind = file_kind(path, name)
    found = file_columns(path, kind, name)
    try:
        with closing(open_rows(path, kind, name, sheets, columns or Columns.corpus())) as rows:
            return Preview(kind, found, list(islice(rows, limit)))
    except FileRejected as exc:
        return Preview(kind, found, [], exc.problem)
