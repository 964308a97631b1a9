"""CSV and JSONL readers: UTF-8 text read line by line, so memory holds one record at a time."""

from __future__ import annotations

import codecs
import csv
import itertools
import json
import sys
from collections.abc import Generator, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

from django.conf import settings

from .rows import Columns, FileRejected, Problem, Row, column_indexes, describe, rows_from_table

# A CSV field may be longer than the longest text allowed, so that such a text is reported as one bad row (which
# --skip-invalid can skip); past this a field is no text but a broken file, and reading it on would cost memory.
CSV_FIELD_FACTOR = 10


def csv_field_limit() -> int:
    return CSV_FIELD_FACTOR * settings.MAX_SAMPLE_CHARS


def _decoded_lines(handle: BinaryIO, name: str) -> Iterator[str]:
    """Lines decoded one at a time, so that a byte that is not UTF-8, or a NUL, is reported on its own line."""
    for number, raw in enumerate(handle, start=1):
        if number == 1:
            raw = raw.removeprefix(codecs.BOM_UTF8)
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise FileRejected(Problem(
                name, f"not UTF-8 text (byte 0x{raw[exc.start]:02x} at byte {exc.start + 1} of the line): the file "
                "must be saved as UTF-8 (Excel: 'CSV UTF-8'); a UTF-8 byte order mark is fine",
                row=number, unit="line")) from None
        if "\x00" in line:
            raise FileRejected(Problem(
                name, f"a NUL byte at character {line.index(chr(0)) + 1}: text files hold none, so this one is "
                "binary or UTF-16; save it as UTF-8", row=number, unit="line"))
        yield line


def _csv_reason(exc: csv.Error) -> str:
    message = str(exc)
    if message == "unexpected end of data":
        return "a quoted field is never closed (unterminated quote)"
    if message.startswith("field larger than field limit"):
        return (f"a field longer than {csv_field_limit():,} characters, the CSV field limit here (a text may have "
                f"at most {settings.MAX_SAMPLE_CHARS:,})")
    if message.endswith("expected after '\"'"):
        return 'a quote inside a quoted field must be doubled ("")'
    return f"not readable as CSV ({message})"


def _csv_records(reader, name: str) -> Iterator[list[str]]:
    """The records of a CSV file; a malformed one refuses the file, naming its row and the line it starts on."""
    width = None
    for number in itertools.count(1):
        start = reader.line_num + 1
        try:
            values = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            raise FileRejected(Problem(name, f"{_csv_reason(exc)}; the row starts on line {start}",
                                       row=number)) from None
        if width is None:
            width = len(values)
        elif any(v.strip() for v in values[width:]):
            raise FileRejected(Problem(
                name, f"{len(values)} fields but the header has {width} (the row starts on line {start}): a text "
                "holding a comma or a quote must be quoted", row=number))
        yield values


@contextmanager
def _csv_table(path: Path, name: str) -> Iterator[tuple[list[str], Iterator[list[str]]]]:
    """The header and the records under it."""
    previous_limit = csv.field_size_limit(csv_field_limit())  # one limit for the whole process: given back below
    try:
        with path.open("rb") as handle:
            # strict: a stray quote is an error, not a field that silently swallows the rest of the file
            records = _csv_records(csv.reader(_decoded_lines(handle, name), strict=True), name)
            header = next(records, [])
            if not header:
                raise FileRejected(Problem(name, "the first line is blank: it must be the header", row=1))
            yield header, records
    finally:
        csv.field_size_limit(previous_limit)


def read_csv(path: Path, name: str, columns: Columns) -> Generator[Row, None, None]:
    with _csv_table(path, name) as (header, records):
        yield from rows_from_table(records, column_indexes(header, columns, name, ""), name, "")


def csv_header(path: Path, name: str) -> list[str]:
    with _csv_table(path, name) as (header, _):
        return header


class _DuplicateKey(Exception):
    def __init__(self, key: str):
        super().__init__(key)
        self.key = key


def _unique_keys(pairs: list[tuple[str, object]]) -> dict:
    record = {}
    for key, value in pairs:
        if key in record:
            raise _DuplicateKey(key)
        record[key] = value
    return record


def _json_object(line: str, name: str, number: int) -> dict:
    at = {"row": number, "unit": "line"}
    try:
        record = json.loads(line, object_pairs_hook=_unique_keys)
    except _DuplicateKey as exc:
        raise FileRejected(Problem(name, f"the key '{exc.key}' appears twice in one object", field=exc.key,
                                   **at)) from None
    except json.JSONDecodeError as exc:
        raise FileRejected(Problem(name, f"not valid JSON: {exc.msg} (column {exc.colno})", **at)) from None
    except ValueError:  # int() refuses a number with more digits than Python converts
        raise FileRejected(Problem(name, f"a number with more than {sys.get_int_max_str_digits():,} digits",
                                   **at)) from None
    except RecursionError:
        raise FileRejected(Problem(name, "arrays or objects nested too deeply to read", **at)) from None
    if not isinstance(record, dict):
        raise FileRejected(Problem(name, f"each line must be a JSON object, not {describe(record)}", **at))
    return record


def jsonl_keys(path: Path, name: str) -> list[str]:
    """The keys of the first record, for choosing the id and text keys."""
    with path.open("rb") as handle:
        for number, line in enumerate(_decoded_lines(handle, name), start=1):
            if line.strip():
                return list(_json_object(line, name, number))
    raise FileRejected(Problem(name, "no records: every line is blank"))


def read_jsonl(path: Path, name: str, columns: Columns) -> Generator[Row, None, None]:
    keys = {column.field: column.key for column in columns.fields}
    found = False
    with path.open("rb") as handle:
        for number, line in enumerate(_decoded_lines(handle, name), start=1):
            if not line.strip():
                continue
            record = _json_object(line, name, number)
            for key in keys.values():
                if key not in record:
                    existing = ", ".join(map(repr, record)) or "none"
                    raise FileRejected(Problem(name, f"no key '{key}'; the keys are: {existing}", row=number,
                                               field=key, unit="line"))
            found = True
            yield Row("", number, {field: record[key] for field, key in keys.items()}, unit="line")
    if not found:
        raise FileRejected(Problem(name, "no records: every line is blank"))
