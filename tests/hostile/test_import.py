"""Hostile files for the corpus import: each is refused with an error naming the file (and sheet, row, field), changes
nothing, and leaves a failed audit row, whether it comes through the service, the command or the admin page."""

from __future__ import annotations

import datetime
import io
import json
import re
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from audit.models import AuditLog
from tests.helpers import write_xlsx
from tests.hostile.conftest import assert_failed_audit
from workers_app.importing.service import ImportRejected, import_corpus

pytestmark = pytest.mark.django_db

HEADER = ("ID", "Text")
SHEET = "xl/worksheets/sheet1.xml"
URL = "/admin/workers_app/corpus/import/"


def written(data: bytes) -> Callable[[Path], None]:
    return lambda path: path.write_bytes(data)


def jsonl(*lines: str) -> Callable[[Path], None]:
    return written(("\n".join(lines) + "\n").encode())


def workbook(*rows: tuple, **sheets: list[tuple]) -> Callable[[Path], None]:
    return lambda path: write_xlsx(path, sheets or {"S": [HEADER, *rows]})


def with_member(member: str, data: bytes, *rows: tuple) -> Callable[[Path], None]:
    """A workbook of ``rows`` whose zip member ``member`` is replaced (or added) with ``data``."""

    def make(path: Path) -> None:
        good = write_xlsx(path.with_name("good.xlsx"), {"S": [HEADER, *rows]})
        with zipfile.ZipFile(good) as source, zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as target:
            for item in source.infolist():
                if item.filename != member:
                    target.writestr(item, source.read(item))
            target.writestr(member, data)

    return make


def sheet_xml(rows: str) -> bytes:
    return (f'<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><dimension ref="A1:B2"/>'
            f"<sheetData>{rows}</sheetData></worksheet>").encode()


def cells(number: int, *values: str) -> str:
    return f'<row r="{number}">' + "".join(f'<c r="{"AB"[i]}{number}" t="inlineStr"><is><t>{v}</t></is></c>'
                                           for i, v in enumerate(values)) + "</row>"


def without_sheets(path: Path) -> None:
    good = write_xlsx(path.with_name("good.xlsx"), {"S": [HEADER, ("x1", "t")]})
    with zipfile.ZipFile(good) as source:
        book = re.sub(rb"<sheets>.*</sheets>", b"<sheets/>", source.read("xl/workbook.xml"))
    with_member("xl/workbook.xml", book)(path)


def not_a_workbook(path: Path) -> None:
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("notes.txt", "just a zip")


HOSTILE_FILES = [
    # an xlsx cell holds 32,767 characters: a longer post is cut there by Excel and openpyxl alike
    pytest.param("posts.xlsx", workbook(("x1", "y" * 40_000)), {},
                 "posts.xlsx, sheet 'S', row 2, field 'text': exactly 32,767 characters, the most an xlsx cell holds",
                 id="xlsx-cell-cut-at-32767"),
    pytest.param("posts.xlsx", workbook(("x1", "fine"), ("x2", "z" * 32_767)), {},
                 "sheet 'S', row 3, field 'text': exactly 32,767 characters", id="xlsx-cell-of-exactly-32767"),
    # empty files, header-only files, empty sheets
    pytest.param("posts.csv", written(b""), {}, "posts.csv: the file is empty (0 bytes)", id="csv-0-bytes"),
    pytest.param("posts.xlsx", written(b""), {}, "posts.xlsx: the file is empty (0 bytes)", id="xlsx-0-bytes"),
    pytest.param("posts.jsonl", written(b""), {}, "posts.jsonl: the file is empty (0 bytes)", id="jsonl-0-bytes"),
    pytest.param("posts.csv", written(b"ID,Text\n"), {}, "posts.csv: no data rows: there is only a header",
                 id="csv-header-only"),
    pytest.param("posts.csv", written(b"\xef\xbb\xbf"), {}, "posts.csv, row 1: the first line is blank: it must be the "
                 "header", id="csv-only-a-bom"),
    pytest.param("posts.xlsx", workbook(), {}, "posts.xlsx, sheet 'S': no data rows: there is only a header",
                 id="xlsx-header-only"),
    pytest.param("posts.xlsx", workbook(Good=[HEADER, ("x1", "fine")], Empty=[]), {},
                 "posts.xlsx, sheet 'Empty': the sheet is empty", id="xlsx-sheet-without-rows"),
    pytest.param("posts.jsonl", jsonl("", "  "), {}, "posts.jsonl: no records: every line is blank",
                 id="jsonl-blank-lines-only"),
    # values that are no text where a post or an id must be
    pytest.param("posts.jsonl", jsonl('{"id": "a", "text": NaN}'), {},
                 "posts.jsonl, line 1, field 'text': a number (nan) where a text must be", id="jsonl-nan-text"),
    pytest.param("posts.jsonl", jsonl('{"id": Infinity, "text": "t"}'), {},
                 "posts.jsonl, line 1, field 'id': a number (inf) is not a whole number", id="jsonl-infinite-id"),
    pytest.param("posts.jsonl", jsonl('{"id": "a", "text": null}'), {},
                 "posts.jsonl, line 1, field 'text': empty text", id="jsonl-null-text"),
    pytest.param("posts.jsonl", jsonl('{"id": null, "text": "t"}'), {},
                 "posts.jsonl, line 1, field 'id': empty id", id="jsonl-null-id"),
    pytest.param("posts.jsonl", jsonl('{"id": "a", "text": true}'), {},
                 "line 1, field 'text': a true/false value (True) where a text must be", id="jsonl-bool-text"),
    pytest.param("posts.jsonl", jsonl('{"id": false, "text": "t"}'), {},
                 "line 1, field 'id': a true/false value (False) cannot be an id", id="jsonl-bool-id"),
    pytest.param("posts.jsonl", jsonl('{"id": "a", "text": {"html": "<b>hi</b>"}}'), {},
                 "line 1, field 'text': a JSON object where a text must be", id="jsonl-object-text"),
    pytest.param("posts.jsonl", jsonl('{"id": ["a", "b"], "text": "t"}'), {},
                 "line 1, field 'id': a JSON array cannot be an id", id="jsonl-array-id"),
    pytest.param("posts.jsonl", jsonl('{"id": "a", "text": 42}'), {},
                 "line 1, field 'text': a number (42) where a text must be", id="jsonl-number-text"),
    pytest.param("posts.jsonl", jsonl('{"id": 1.5, "text": "t"}'), {},
                 "line 1, field 'id': a number (1.5) is not a whole number", id="jsonl-fractional-id"),
    pytest.param("posts.jsonl", jsonl('{"id": 1e20, "text": "t"}'), {},
                 "line 1, field 'id': a number (1e+20) is too large to be an exact whole number",
                 id="jsonl-float-id-past-exact"),
    pytest.param("posts.xlsx", workbook(("x1", 42)), {},
                 "sheet 'S', row 2, field 'text': a number (42) where a text must be", id="xlsx-number-text"),
    pytest.param("posts.xlsx", workbook(("x1", datetime.datetime(2024, 5, 1))), {},
                 "sheet 'S', row 2, field 'text': a date or time where a text must be", id="xlsx-date-text"),
    pytest.param("posts.xlsx", workbook((True, "t")), {},
                 "sheet 'S', row 2, field 'id': a true/false value (True) cannot be an id", id="xlsx-bool-id"),
    pytest.param("posts.xlsx", workbook((2.5, "t")), {},
                 "sheet 'S', row 2, field 'id': a number (2.5) is not a whole number", id="xlsx-fractional-id"),
    pytest.param("posts.jsonl", jsonl('{"id": "a", "text": "before\\u0000after"}'), {},
                 "line 1, field 'text': control character U+0000 at character 7", id="jsonl-nul-in-text"),
    pytest.param("posts.csv", written(b"ID,Text\nx1,bell\x07here\n"), {},
                 "posts.csv, row 2, field 'text': control character U+0007 at character 5", id="csv-bell-in-text"),
    pytest.param("posts.jsonl", jsonl('{"id": "a\\u001b[31m", "text": "t"}'), {},
                 "line 1, field 'id': control character U+001B at character 2", id="jsonl-escape-in-id"),
    pytest.param("posts.jsonl", jsonl('{"id": "a", "text": "half \\ud800 a pair"}'), {},
                 "line 1, field 'text': half a surrogate pair (U+D800) at character 6", id="jsonl-lone-surrogate"),
    pytest.param("posts.csv", written(b"ID,Text\n" + b"i" * 201 + b",t\n"), {},
                 "row 2, field 'id': id is 201 characters; the limit is 200", id="csv-id-too-long"),
    # CSV damage
    pytest.param("posts.csv", written(b'ID,Text\nx1,fine\nx2,"never closed\nx3,more\n'), {},
                 "posts.csv, row 3: a quoted field is never closed (unterminated quote); the row starts on line 3",
                 id="csv-unterminated-quote"),
    pytest.param("posts.csv", written(b'ID,Text\nx1,"stray "quote" inside"\n'), {},
                 'posts.csv, row 2: a quote inside a quoted field must be doubled', id="csv-stray-quote"),
    pytest.param("posts.csv", written(b"ID,Text\nx1,nul\x00byte\n"), {},
                 "posts.csv, line 2: a NUL byte at character 7", id="csv-nul-byte"),
    pytest.param("posts.csv", written("ID,Text\nx1,fine\n".encode("utf-16")), {},
                 "posts.csv, line 1: not UTF-8 text (byte 0xff at byte 1 of the line)", id="csv-utf16"),
    pytest.param("posts.csv", written("ID,Text\nx1,café\n".encode("cp1252")), {},
                 "posts.csv, line 2: not UTF-8 text (byte 0xe9 at byte 7 of the line): the file must be saved as "
                 "UTF-8", id="csv-windows-1252"),
    pytest.param("posts.csv", written(b"ID,Text\nx1," + b"w" * 1_001 + b"\n"), {"MAX_SAMPLE_CHARS": 100},
                 "posts.csv, row 2: a field longer than 1,000 characters, the CSV field limit here",
                 id="csv-field-over-the-limit"),
    pytest.param("posts.csv", written(b"ID,Text\nx1,one, two\n"), {},
                 "posts.csv, row 2: 3 fields but the header has 2 (the row starts on line 2)",
                 id="csv-more-fields-than-the-header"),
    pytest.param("posts.csv", written(b"ID,Text,text\nx1,a,b\n"), {},
                 "posts.csv: two columns are named 'text' (columns 2, 3)", id="csv-ambiguous-header"),
    # XLSX damage
    pytest.param("posts.xlsx", written(b"ID,Text\nx1,fine\n"), {},
                 "posts.xlsx: not an xlsx workbook: an xlsx file is a zip archive and this is not one",
                 id="xlsx-not-a-zip"),
    pytest.param("posts.xlsx", not_a_workbook, {}, "posts.xlsx: not a readable xlsx workbook",
                 id="xlsx-zip-that-is-no-workbook"),
    pytest.param("posts.xlsx", without_sheets, {}, "posts.xlsx: the workbook has no sheets",
                 id="xlsx-workbook-without-sheets"),
    pytest.param("posts.xlsx", with_member(SHEET, sheet_xml(cells(1, "ID", "Text") + cells(2, "x1", "a"))[:-10]),
                 {}, "posts.xlsx, sheet 'S', row 3: damaged sheet XML", id="xlsx-truncated-sheet-xml"),
    pytest.param("posts.xlsx", with_member(SHEET, b"\x00\x01 not xml at all"), {},
                 "posts.xlsx: not a readable xlsx workbook (ParseError: not well-formed",
                 id="xlsx-sheet-that-is-no-xml"),
    pytest.param("posts.xlsx", with_member(SHEET, sheet_xml(cells(1, "ID", "Text") + cells(2, "x1", "a")
                                                            + cells(1_048_600, "x2", "b"))), {},
                 "posts.xlsx, sheet 'S': rows numbered past 1,048,576", id="xlsx-row-number-past-excel"),
    pytest.param("posts.xlsx", workbook(*[(f"x{i}", "t") for i in range(6)]), {"IMPORT_MAX_ROWS": 5},
                 "posts.xlsx, sheet 'S', row 7: more than 5 data rows (IMPORT_MAX_ROWS)", id="xlsx-too-many-rows"),
    pytest.param("posts.xlsx", with_member("xl/media/padding.bin", bytes(2_000_000), ("x1", "t")),
                 {"IMPORT_MAX_BYTES": 100_000},
                 "posts.xlsx: the workbook would expand to", id="xlsx-zip-bomb"),
    # JSONL damage
    pytest.param("posts.jsonl", jsonl('{"id": "a", "text": "t", "n": ' + "9" * 5_000 + "}"), {},
                 "posts.jsonl, line 1: a number with more than 4,300 digits", id="jsonl-huge-integer"),
    pytest.param("posts.jsonl", jsonl('{"id": "a", "text": ' + "[" * 100_000 + "]" * 100_000 + "}"), {},
                 "posts.jsonl, line 1: arrays or objects nested too deeply to read", id="jsonl-deep-nesting"),
    pytest.param("posts.jsonl", jsonl('{"id": "a", "text": "t"}', '["b", "u"]'), {},
                 "posts.jsonl, line 2: each line must be a JSON object, not a JSON array", id="jsonl-line-not-object"),
    pytest.param("posts.jsonl", jsonl('{"id": "a", "text": "harmless", "text": "the real one"}'), {},
                 "posts.jsonl, line 1, field 'text': the key 'text' appears twice in one object",
                 id="jsonl-duplicate-keys"),
    pytest.param("posts.jsonl", jsonl('{"id": "a", "text": "t"', ""), {},
                 "posts.jsonl, line 1: not valid JSON", id="jsonl-invalid-json"),
    # size and row limits
    pytest.param("posts.csv", written(b"ID,Text\n" + b"x1,long enough to pass the limit\n" * 3),
                 {"IMPORT_MAX_BYTES": 50}, "posts.csv: the file is 107 bytes; the limit is 50 bytes",
                 id="csv-over-import-max-bytes"),
    pytest.param("posts.jsonl", jsonl(*[json.dumps({"id": f"j{i}", "text": "t"}) for i in range(4)]),
                 {"IMPORT_MAX_ROWS": 3}, "posts.jsonl, line 4: more than 3 data rows", id="jsonl-too-many-rows"),
]


def refusal(path: Path, **options) -> str:
    with pytest.raises(ImportRejected) as caught:
        import_corpus(path, actor="mallory", **options)
    return str(caught.value)


def assert_refusal_audited(expected: str) -> None:
    assert_failed_audit("import_corpus")
    errors = [row.detail["error"] for row in AuditLog.objects.filter(action="import_corpus", result="failed")]
    assert any(expected in error for error in errors), errors


@pytest.mark.parametrize(("name", "make", "overrides", "expected"), HOSTILE_FILES)
def test_it_refuses_a_hostile_file_naming_the_problem_and_changes_nothing(tmp_path, settings, unchanged, name, make,
                                                                          overrides, expected):
    for setting, value in overrides.items():
        setattr(settings, setting, value)
    path = tmp_path / name
    make(path)
    message = refusal(path)
    assert expected in message
    assert "Traceback" not in message
    unchanged()
    assert_refusal_audited(expected)


COMMAND_CASES = [
    pytest.param("posts.xlsx", workbook(("x1", "y" * 40_000)), {},
                 "sheet 'S', row 2, field 'text': exactly 32,767 characters", id="command-cut-cell"),
    pytest.param("posts.csv", written("ID,Text\nx1,naïve\n".encode("latin-1")), {},
                 "posts.csv, line 2: not UTF-8 text", id="command-latin-1-csv"),
    pytest.param("posts.xlsx", with_member("xl/media/padding.bin", bytes(2_000_000), ("x1", "t")),
                 {"IMPORT_MAX_BYTES": 100_000}, "refused as a possible zip bomb", id="command-zip-bomb"),
    pytest.param("posts.jsonl", jsonl('{"id": "a", "text": ' + '{"t": ' * 100_000), {},
                 "posts.jsonl, line 1: arrays or objects nested too deeply to read", id="command-deep-nesting"),
]


@pytest.mark.parametrize(("name", "make", "overrides", "expected"), COMMAND_CASES)
def test_the_command_refuses_a_hostile_file_with_the_problem_and_changes_nothing(tmp_path, settings, unchanged, name,
                                                                                make, overrides, expected):
    for setting, value in overrides.items():
        setattr(settings, setting, value)
    path = tmp_path / name
    make(path)
    with pytest.raises(CommandError) as caught:
        call_command("import_corpus", str(path))
    assert expected in str(caught.value) and "nothing was imported" in str(caught.value)
    unchanged()
    assert_refusal_audited(expected)


def upload(name: str, data: bytes) -> io.BytesIO:
    handle = io.BytesIO(data)
    handle.name = name
    return handle


ADMIN_CASES = [
    pytest.param("posts.csv", b"ID,Text\n" + b"x1,a post long enough to pass the limit\n" * 40,
                 {"IMPORT_MAX_BYTES": 1_000}, "posts.csv: the file is 1,608 bytes; the limit is 1,000 bytes",
                 id="admin-upload-over-import-max-bytes"),
    pytest.param("posts.jsonl", b'{"id": "a", "text": "t"}\n{"id": "b", "text": 7}\n', {},
                 "posts.jsonl, line 2, field 'text': a number (7) where a text must be", id="admin-number-text"),
    pytest.param("posts.xlsx", b"PK\x03\x04 this is no zip", {},
                 "posts.xlsx: not an xlsx workbook", id="admin-broken-xlsx"),
]


@pytest.mark.parametrize(("name", "data", "overrides", "expected"), ADMIN_CASES)
def test_the_admin_page_shows_the_problem_of_a_hostile_upload_and_changes_nothing(
        tmp_path, settings, admin_client, unchanged, name, data, overrides, expected):
    uploads = tmp_path / "uploads"
    uploads.mkdir()
    # Uploads over 64 bytes are streamed to a temporary file here, which must be gone afterwards.
    settings.FILE_UPLOAD_MAX_MEMORY_SIZE = 64
    settings.FILE_UPLOAD_TEMP_DIR = str(uploads)
    for setting, value in overrides.items():
        setattr(settings, setting, value)
    response = admin_client.post(URL, {"file": upload(name, data)})
    assert response.status_code == 200
    page = response.content.decode()
    assert expected.replace("'", "&#x27;") in page and "Traceback" not in page
    assert list(uploads.iterdir()) == []
    unchanged()
    assert_refusal_audited(expected)
