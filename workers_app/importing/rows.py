"""What every reader hands on: rows that know where they came from, and problems that name that place."""

from __future__ import annotations

import datetime
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

ID_CANDIDATES = ("id", "sample_id", "external_id", "post_id")
TEXT_CANDIDATES = ("text", "post", "body", "message")


@dataclass(frozen=True)
class Problem:
    """What is wrong, and where: the file, the sheet, the row (or line) and the field when known."""

    file: str
    reason: str
    sheet: str = ""
    row: int | None = None
    field: str = ""
    unit: str = "row"

    def __str__(self) -> str:
        where = [self.file]
        if self.sheet:
            where.append(f"sheet '{self.sheet}'")
        if self.row is not None:
            where.append(f"{self.unit} {self.row}")
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
    """One data row as read: the value of each asked-for field (see ``Columns``) as the file typed it (text,
    number, bool, null, ...); the checks decide what it may become. ``cell_limit`` is the most characters a cell
    of the format holds, if any."""

    sheet: str
    row: int
    values: dict[str, object]
    unit: str = "row"
    cell_limit: int | None = None

    def problem(self, file: str, field: str, reason: str) -> Problem:
        return Problem(file, reason, sheet=self.sheet, row=self.row, field=field, unit=self.unit)

    def where(self) -> str:
        place = f"{self.unit} {self.row}"
        return f"sheet '{self.sheet}' {place}" if self.sheet else place


@dataclass(frozen=True)
class Column:
    """A field a reader must find: the header (or jsonl key) the user named, else the first of ``candidates`` the
    file has; ``option`` is how the user names it, for messages."""

    field: str
    wanted: str | None
    candidates: tuple[str, ...]
    option: str

    @property
    def key(self) -> str:
        """The jsonl key: exactly the one named, else the first candidate."""
        return self.wanted or self.candidates[0]


@dataclass(frozen=True)
class Columns:
    fields: tuple[Column, ...]

    @classmethod
    def corpus(cls, id_column: str | None = None, text_column: str | None = None) -> Columns:
        return cls((Column("id", id_column, ID_CANDIDATES, "--id-column"),
                    Column("text", text_column, TEXT_CANDIDATES, "--text-column")))


def describe(value: object) -> str:
    """A value's kind as a user would say it, for messages."""
    if isinstance(value, bool):
        return f"a true/false value ({value})"
    if isinstance(value, int | float):
        shown = repr(value)
        return f"a number ({shown if len(shown) <= 24 else shown[:20] + '…'})"
    if isinstance(value, dict):
        return "a JSON object"
    if isinstance(value, list):
        return "a JSON array"
    if isinstance(value, datetime.date | datetime.time | datetime.timedelta):
        return "a date or time"
    if value is None:
        return "null"
    if isinstance(value, str):
        return "a string"
    return f"a {type(value).__name__}"


def header_text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _pick(header: list[str], column: Column, file: str, sheet: str) -> int:
    lowered = [h.strip().lower() for h in header]
    for name in [column.wanted.strip().lower()] if column.wanted else column.candidates:
        if lowered.count(name) > 1:
            places = ", ".join(str(i + 1) for i, h in enumerate(lowered) if h == name)
            raise FileRejected(Problem(file, f"two columns are named '{name}' (columns {places}): rename one",
                                       sheet=sheet))
        if name in lowered:
            return lowered.index(name)
    existing = ", ".join(repr(h) for h in header if h.strip()) or "none"
    what = column.field
    asked = (f"no {what} column '{column.wanted}'" if column.wanted
             else f"no {what} column (looked for {', '.join(column.candidates)})")
    raise FileRejected(Problem(file, f"{asked}; the columns are: {existing}. Choose one with {column.option}.",
                               sheet=sheet))


def column_indexes(header: Sequence[object], columns: Columns, file: str, sheet: str) -> dict[str, int]:
    """Where each asked-for field is in a header row."""
    names = [header_text(h) for h in header]
    return {column.field: _pick(names, column, file, sheet) for column in columns.fields}


def _value_at(values: Sequence[object], index: int) -> object:
    return values[index] if index < len(values) else None


def rows_from_table(data: Iterator[Sequence[object]], at: dict[str, int], file: str, sheet: str, *,
                    cell_limit: int | None = None) -> Iterator[Row]:
    """The data rows under a header (row 1), numbered as a spreadsheet shows them; a table without any is refused."""
    found = False
    for number, values in enumerate(data, start=2):
        if all(v in (None, "") for v in values):
            continue  # blank line between blocks of data
        found = True
        yield Row(sheet, number, {field: _value_at(values, index) for field, index in at.items()},
                  cell_limit=cell_limit)
    if not found:
        raise FileRejected(Problem(file, "no data rows: there is only a header", sheet=sheet))
