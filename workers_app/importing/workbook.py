"""The xlsx reader. A workbook is a zip of XML written by anyone: its expanded size is checked before anything is
expanded, sheets are streamed (openpyxl read-only mode), and a formula is read as the text it is, never evaluated."""

from __future__ import annotations

import zipfile
from collections.abc import Generator, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from django.conf import settings

from .rows import Columns, FileRejected, Problem, Row, column_indexes, header_text, rows_from_table

if TYPE_CHECKING:
    from openpyxl.workbook import Workbook

# Excel and openpyxl both cut a longer text at this length without a word when they save a cell.
XLSX_CELL_LIMIT = 32_767
EXCEL_LAST_ROW = 1_048_576
# XML of text compresses well, but not by more than this; a workbook claiming more is refused as a zip bomb.
EXPANSION_FACTOR = 10


def _what(exc: Exception) -> str:
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


def _refuse_zip_bomb(path: Path, name: str) -> None:
    """Python's zipfile stops a member at its declared size, so the declared sizes bound what reading expands."""
    try:
        with zipfile.ZipFile(path) as archive:
            expanded = sum(member.file_size for member in archive.infolist())
    except (zipfile.BadZipFile, OSError, ValueError, EOFError):
        raise FileRejected(Problem(name, "not an xlsx workbook: an xlsx file is a zip archive and this is not one "
                                   "(a CSV file renamed? then name it .csv)")) from None
    limit = EXPANSION_FACTOR * settings.IMPORT_MAX_BYTES
    if expanded > limit:
        raise FileRejected(Problem(name, f"the workbook would expand to {expanded:,} bytes, more than {limit:,} "
                                   f"({EXPANSION_FACTOR} × IMPORT_MAX_MB): refused as a possible zip bomb"))


@contextmanager
def _workbook(path: Path, name: str) -> Iterator[Workbook]:
    import openpyxl  # here, not with the module: every process's start-up imports the module, few read a workbook

    _refuse_zip_bomb(path, name)
    with path.open("rb") as handle:
        # Loading parses the workbook's XML and the start of every sheet's: damage fails in any of those steps.
        try:
            book = openpyxl.load_workbook(handle, read_only=True, data_only=False, keep_links=False)
        except Exception as exc:  # noqa: BLE001
            raise FileRejected(Problem(name, f"not a readable xlsx workbook ({_what(exc)})")) from None
        try:
            yield book
        finally:
            book.close()


def _chosen_sheets(book: Workbook, name: str, sheets: list[str] | None) -> list[str]:
    missing = [s for s in sheets or [] if s not in book.sheetnames]
    if missing:
        raise FileRejected(Problem(name, f"no sheet {', '.join(map(repr, missing))}; the sheets are: "
                                   f"{', '.join(map(repr, book.sheetnames))}"))
    if not book.sheetnames:
        raise FileRejected(Problem(name, "the workbook has no sheets"))
    return sheets or book.sheetnames


def _values(rows: Iterator[tuple], name: str, title: str, first: int) -> Iterator[tuple]:
    """The rows of a sheet as openpyxl parses them, where damaged XML becomes a refusal naming the sheet and row."""
    number = first - 1
    while True:
        try:
            values = next(rows)
        except StopIteration:
            return
        except Exception as exc:  # noqa: BLE001  the XML parser and openpyxl's casts raise their own kinds
            raise FileRejected(Problem(name, f"damaged sheet XML ({_what(exc)})", sheet=title,
                                       row=number + 1)) from None
        number += 1
        if number > EXCEL_LAST_ROW:
            raise FileRejected(Problem(name, f"rows numbered past {EXCEL_LAST_ROW:,}, the last row of a sheet: "
                                       "the sheet is damaged", sheet=title))
        yield values


def _header(book: Workbook, title: str, name: str) -> tuple | None:
    sheet = book[title]
    sheet.reset_dimensions()  # openpyxl would pad every row out to a forged <dimension>, cell by cell
    return next(_values(sheet.iter_rows(max_row=1, values_only=True), name, title, 1), None)


def _sheet_rows(book: Workbook, title: str, name: str, columns: Columns) -> Generator[Row, None, None]:
    sheet = book[title]
    header = _header(book, title, name)
    if header is None:
        raise FileRejected(Problem(name, "the sheet is empty; choose the sheets to read with --sheet", sheet=title))
    at = column_indexes(header, columns, name, title)
    # Reading only up to the id and text columns keeps a row with a cell far to the right from costing anything.
    data = sheet.iter_rows(min_row=2, max_col=max(at.values()) + 1, values_only=True)
    yield from rows_from_table(_values(data, name, title, 2), at, name, title, cell_limit=XLSX_CELL_LIMIT)


def read_xlsx(path: Path, name: str, sheets: list[str] | None, columns: Columns) -> Generator[Row, None, None]:
    with _workbook(path, name) as book:
        for title in _chosen_sheets(book, name, sheets):
            yield from _sheet_rows(book, title, name, columns)


def row_count_hint(path: Path, name: str, sheets: list[str] | None) -> int:
    """The data rows the sheets' <dimension> claims: good for a progress bar, not to be trusted further."""
    with _workbook(path, name) as book:
        return sum(max((book[s].max_row or 1) - 1, 0) for s in _chosen_sheets(book, name, sheets))


def sheet_headers(path: Path, name: str) -> dict[str, list[str]]:
    """Every sheet's header row (empty for an empty sheet), for choosing the sheets and columns to import."""
    with _workbook(path, name) as book:
        return {title: [header_text(value) for value in _header(book, title, name) or ()]
                for title in book.sheetnames}
