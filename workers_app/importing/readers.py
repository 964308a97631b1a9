"""Streaming readers that turn an xlsx, csv or jsonl file into (sheet, row, id, text) rows."""

from __future__ import annotations

import csv
import json
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import openpyxl

ID_CANDIDATES = ("id", "sample_id", "external_id", "post_id")
TEXT_CANDIDATES = ("text", "post", "body", "message")
FORMATS = {".xlsx": "xlsx", ".xlsm": "xlsx", ".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl"}


@dataclass(frozen=True)
class Problem:
    """What is wrong, and where: the file, the sheet, the row and the field when known."""

    file: str
    reason: str
    sheet: str = ""
    row: int | None = None
    field: str = ""

    def __str__(self) -> str:
        where = [self.file]
        if self.sheet:
            where.append(f"sheet '{self.sheet}'")
        if self.row is not None:
            where.append(f"row {self.row}")
        if self.field:
            where.append(f"field '{self.field}'")
        return f"{', '.join(where)}: {self.reason}"


class FileRejected(Exception):
    """The file as a whole cannot be read; nothing was imported."""

    def __init__(self, problem: Problem):
        super().__init__(str(problem))
        self.problem = problem


@dataclass(frozen=True)
class Row:
    sheet: str
    row: int
    external_id: str
    text: str


@dataclass(frozen=True)
class Columns:
    id_column: str | None = None
    text_column: str | None = None


def _cell_text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _pick(header: list[str], wanted: str | None, candidates: tuple[str, ...], what: str, file: str, sheet: str) -> int:
    lowered = [h.strip().lower() for h in header]
    names = [wanted.strip().lower()] if wanted else list(candidates)
    for name in names:
        if name in lowered:
            return lowered.index(name)
    existing = ", ".join(repr(h) for h in header if h.strip()) or "none"
    asked = f"no {what} column '{wanted}'" if wanted else f"no {what} column (looked for {', '.join(candidates)})"
    option = "--id-column" if what == "id" else "--text-column"
    raise FileRejected(Problem(file, f"{asked}; the columns are: {existing}. Choose one with {option}.", sheet=sheet))


def _cell_at(values: tuple, index: int) -> str:
    return _cell_text(values[index]) if index < len(values) else ""


def _rows_from_table(
    rows: Iterator[tuple], columns: Columns, file: str, sheet: str, first_row: int
) -> Iterator[Row]:
    header_row = next(rows, None)
    if header_row is None:
        return
    header = [_cell_text(h) for h in header_row]
    id_at = _pick(header, columns.id_column, ID_CANDIDATES, "id", file, sheet)
    text_at = _pick(header, columns.text_column, TEXT_CANDIDATES, "text", file, sheet)
    for number, values in enumerate(rows, start=first_row + 1):
        if not any(v not in (None, "") for v in values):
            continue  # blank line between blocks of data
        yield Row(sheet, number, _cell_at(values, id_at).strip(), _cell_at(values, text_at))


def read_xlsx(path: Path, sheets: list[str] | None, columns: Columns) -> Iterator[Row]:
    try:
        book = openpyxl.load_workbook(path, read_only=True, data_only=True)
    except (zipfile.BadZipFile, KeyError, OSError, ValueError) as exc:
        raise FileRejected(Problem(path.name, f"not a readable xlsx workbook ({exc.__class__.__name__}: {exc})"))
    try:
        chosen = sheets or book.sheetnames
        missing = [s for s in chosen if s not in book.sheetnames]
        if missing:
            raise FileRejected(
                Problem(path.name, f"no sheet {', '.join(map(repr, missing))}; the sheets are: "
                        f"{', '.join(map(repr, book.sheetnames))}")
            )
        for name in chosen:
            yield from _rows_from_table(book[name].iter_rows(values_only=True), columns, path.name, name, 1)
    except zipfile.BadZipFile as exc:
        raise FileRejected(Problem(path.name, f"corrupt xlsx workbook: {exc}"))
    finally:
        book.close()


def read_csv(path: Path, sheets: list[str] | None, columns: Columns) -> Iterator[Row]:
    csv.field_size_limit(10_000_000)
    try:
        with path.open(newline="", encoding="utf-8-sig") as handle:
            yield from _rows_from_table(iter(csv.reader(handle)), columns, path.name, "", 1)
    except UnicodeDecodeError as exc:
        raise FileRejected(Problem(path.name, f"not UTF-8 text (byte {exc.start}): save the file as UTF-8 CSV"))
    except csv.Error as exc:
        raise FileRejected(Problem(path.name, f"not a readable CSV file: {exc}"))


def read_jsonl(path: Path, sheets: list[str] | None, columns: Columns) -> Iterator[Row]:
    id_key = columns.id_column or "id"
    text_key = columns.text_column or "text"
    try:
        with path.open(encoding="utf-8-sig") as handle:
            for number, line in enumerate(handle, start=1):
                if not line.strip():
                    continue
                try:
                    record = json.loads(line)
                except json.JSONDecodeError as exc:
                    raise FileRejected(Problem(path.name, f"not valid JSON: {exc.msg}", row=number))
                if not isinstance(record, dict):
                    raise FileRejected(Problem(path.name, "each line must be a JSON object", row=number))
                for key in (id_key, text_key):
                    if key not in record:
                        keys = ", ".join(map(repr, record)) or "none"
                        raise FileRejected(
                            Problem(path.name, f"no key '{key}'; the keys are: {keys}", row=number, field=key)
                        )
                yield Row("", number, _cell_text(record[id_key]).strip(), _cell_text(record[text_key]))
    except UnicodeDecodeError as exc:
        raise FileRejected(Problem(path.name, f"not UTF-8 text (byte {exc.start})"))


READERS = {"xlsx": read_xlsx, "csv": read_csv, "jsonl": read_jsonl}


def open_rows(path: Path, sheets: list[str] | None, columns: Columns) -> Iterator[Row]:
    if not path.exists():
        raise FileRejected(Problem(str(path), "no such file"))
    if not path.is_file():
        raise FileRejected(Problem(str(path), "not a file"))
    kind = FORMATS.get(path.suffix.lower())
    if kind is None:
        raise FileRejected(
            Problem(path.name, f"not a spreadsheet: expected one of {', '.join(sorted(FORMATS))}")
        )
    if sheets and kind != "xlsx":
        raise FileRejected(Problem(path.name, "--sheet applies to xlsx workbooks only"))
    return READERS[kind](path, sheets, columns)


def count_rows_hint(path: Path, sheets: list[str] | None) -> int | None:
    """A cheap estimate of the number of rows, for a progress bar; None when unknown."""
    if FORMATS.get(path.suffix.lower()) != "xlsx":
        return None
    try:
        book = openpyxl.load_workbook(path, read_only=True)
        try:
            return sum(max((book[s].max_row or 1) - 1, 0) for s in (sheets or book.sheetnames) if s in book)
        finally:
            book.close()
    except (OSError, KeyError, ValueError, zipfile.BadZipFile):  # the real reader reports it properly
        return None
