"""CSV cells that a spreadsheet opens as text, never as a formula (OWASP's advice against CSV injection)."""

from __future__ import annotations

from collections.abc import Iterable

# What makes Excel, LibreOffice or Google Sheets read a cell as a formula (a tab or CR can hide the '=' after it).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(value: object) -> object:
    """Text that would start a formula gets a leading apostrophe; every other value is written as it is."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return f"'{value}"
    return value


def csv_row(values: Iterable[object]) -> list[object]:
    return [csv_cell(value) for value in values]
