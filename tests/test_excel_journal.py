"""WorkbookJournal: published workbooks are valid xlsx, text stays text, and crashes never break the file.

Pure file-system tests: no Django database.
"""

from __future__ import annotations

import datetime as dt
import os
import random
import re
import signal
import subprocess
import sys
import textwrap
import time
import zipfile
from pathlib import Path

import openpyxl
import pytest

from workers_app.excel import journal as journal_module
from workers_app.excel.journal import EXCEL_CELL_LIMIT, Column, WorkbookJournal, safe_cell_text

PROJECT_ROOT = Path(__file__).resolve().parents[1]
COLUMNS = [Column("sample id", 12), Column("text", 60), Column("label", 14), Column("when", 20)]
MARKER = re.compile(r" …\[cut: [\d,]+ characters in all; the full text is in the database\]$")


@pytest.fixture(autouse=True)
def clean_redis():
    """Overrides conftest's autouse Redis flush: these tests touch only files and run without Django."""
    yield


def utf16_units(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def rows_for(first: int, count: int, highlight_every: int = 0) -> list[tuple[list[object], bool]]:
    return [
        ([key, f"text of sample {key}", "positive" if key % 2 else "negative", dt.datetime(2024, 5, 1, 12, key % 60)],
         bool(highlight_every) and key % highlight_every == 0)
        for key in range(first, first + count)
    ]


def published(tmp_path: Path, rows: list[tuple[list[object], bool]], columns=COLUMNS) -> Path:
    path = tmp_path / "annotator_1_test.xlsx"
    journal = WorkbookJournal(path, columns)
    journal.append(rows, last_key=len(rows))
    journal.publish()
    return path


def data_values(path: Path) -> list[tuple]:
    sheet = openpyxl.load_workbook(path, read_only=True).active
    return list(sheet.iter_rows(min_row=2, values_only=True))


# --------------------------------------------------------------------------- workbook structure


def test_a_workbook_built_over_several_appends_opens_with_header_frozen_pane_filter_and_ordered_rows(tmp_path):
    path = tmp_path / "annotator_3_news.xlsx"
    journal = WorkbookJournal(path, COLUMNS)
    for first in (1, 51, 101):
        assert journal.append(rows_for(first, 50), last_key=first + 49) == 50
        journal.publish()
    assert (journal.row_count, journal.last_key) == (150, 150)

    book = openpyxl.load_workbook(path)
    sheet = book.active
    assert sheet.title == "annotations"
    assert [cell.value for cell in sheet[1]] == [column.title for column in COLUMNS]
    assert all(cell.font.b for cell in sheet[1])
    assert sheet.freeze_panes == "A2"
    assert sheet.auto_filter.ref == "A1:D151"
    assert sheet.max_row == 151
    assert sheet.column_dimensions["B"].width == 60
    assert [row[0].value for row in sheet.iter_rows(min_row=2)] == list(range(1, 151))
    assert sheet["C2"].value == "positive" and sheet["C3"].value == "negative"
    assert sheet["D2"].value == "2024-05-01T12:01:00"

    read_only = openpyxl.load_workbook(path, read_only=True).active
    assert read_only.max_row == 151  # from <dimension>; the project's readers rely on it
    assert [row[0] for row in read_only.iter_rows(min_row=2, values_only=True)] == list(range(1, 151))


def test_every_zip_member_passes_its_crc_check_and_the_filter_is_a_hidden_defined_name(tmp_path):
    path = published(tmp_path, rows_for(1, 20))
    with zipfile.ZipFile(path) as archive:
        assert archive.testzip() is None
        names = archive.namelist()
        workbook_xml = archive.read("xl/workbook.xml").decode()
    assert {"[Content_Types].xml", "_rels/.rels", "xl/workbook.xml", "xl/worksheets/sheet1.xml"} <= set(names)
    assert '<definedName name="_xlnm._FilterDatabase" localSheetId="0" hidden="1">' in workbook_xml
    assert "'annotations'!$A$1:$D$21" in workbook_xml


def test_publishing_with_no_rows_gives_a_header_only_workbook(tmp_path):
    path = tmp_path / "annotator_2_empty.xlsx"
    WorkbookJournal(path, COLUMNS).publish()
    sheet = openpyxl.load_workbook(path).active
    assert sheet.max_row == 1
    assert sheet.auto_filter.ref == "A1:D1"
    assert [cell.value for cell in sheet[1]] == ["sample id", "text", "label", "when"]


def test_a_sheet_title_with_an_apostrophe_is_quoted_in_the_filter_range(tmp_path):
    path = tmp_path / "annotator_1_t.xlsx"
    journal = WorkbookJournal(path, COLUMNS, sheet_title="Bob's & co")
    journal.append(rows_for(1, 3), last_key=3)
    journal.publish()
    book = openpyxl.load_workbook(path)
    assert book.sheetnames == ["Bob's & co"]
    with zipfile.ZipFile(path) as archive:
        assert "'Bob''s &amp; co'!$A$1:$D$4" in archive.read("xl/workbook.xml").decode()


@pytest.mark.parametrize("title", ["", "x" * 32, "a/b", "a[1]", "'quoted'"])
def test_sheet_titles_excel_rejects_are_refused(tmp_path, title):
    with pytest.raises(ValueError):
        WorkbookJournal(tmp_path / "w.xlsx", COLUMNS, sheet_title=title)


def test_numbers_booleans_dates_and_none_get_their_own_cell_kinds(tmp_path):
    big_id = 12345678901234567890
    path = published(tmp_path, [([7, 2.5, True, None], False), ([big_id, float("nan"), dt.date(2024, 2, 29)], False)])
    sheet = openpyxl.load_workbook(path).active
    assert (sheet["A2"].value, sheet["A2"].data_type) == (7, "n")
    assert (sheet["B2"].value, sheet["B2"].data_type) == (2.5, "n")
    assert sheet["C2"].value is True
    assert sheet["D2"].value is None
    # Excel would round a 20-digit id to 15 significant digits, so it is kept as text.
    assert (sheet["A3"].value, sheet["A3"].data_type) == (str(big_id), "s")
    assert sheet["B3"].value == "nan"
    assert sheet["C3"].value == "2024-02-29"


def test_highlighted_rows_carry_the_fill_on_every_column(tmp_path):
    rows = [([1, "plain"], False), ([2, "flagged"], True), ([3, "plain"], False)]
    sheet = openpyxl.load_workbook(published(tmp_path, rows)).active
    flagged = [sheet.cell(row=3, column=c) for c in range(1, 5)]
    assert all(cell.fill.patternType == "solid" for cell in flagged)
    assert len({cell.fill.fgColor.rgb for cell in flagged}) == 1
    assert all(cell.fill.patternType is None for row in (2, 4) for cell in sheet[row])
    assert sheet["C3"].value is None  # the fill does not invent values


def test_rows_with_more_values_than_columns_are_refused_and_nothing_is_written(tmp_path):
    path = tmp_path / "annotator_1_t.xlsx"
    journal = WorkbookJournal(path, COLUMNS)
    journal.append(rows_for(1, 2), last_key=2)
    with pytest.raises(ValueError):
        journal.append([([3, "ok"], False), ([4, "a", "b", "c", "d"], False)], last_key=4)
    assert (journal.row_count, journal.last_key) == (2, 2)
    assert WorkbookJournal(path, COLUMNS).row_count == 2


def test_last_key_may_not_go_backwards_but_may_advance_without_rows(tmp_path):
    journal = WorkbookJournal(tmp_path / "annotator_1_t.xlsx", COLUMNS)
    journal.append(rows_for(1, 2), last_key=10)
    assert journal.append([], last_key=15) == 0
    assert WorkbookJournal(journal.path, COLUMNS).last_key == 15
    with pytest.raises(ValueError):
        journal.append(rows_for(3, 1), last_key=14)


# --------------------------------------------------------------------------- text stays text


@pytest.mark.parametrize(
    "value",
    ['=HYPERLINK("http://x","y")', "=1+1", "+41 22 000 00 00", "-3", "@SUM(A1:A2)", "\tindented", "\rcarriage"],
)
def test_formula_looking_text_comes_back_as_plain_text(tmp_path, value):
    sheet = openpyxl.load_workbook(published(tmp_path, [([1, value], False)])).active
    assert sheet["B2"].data_type == "s"
    assert isinstance(sheet["B2"].value, str)
    assert sheet["B2"].value == value


def test_carriage_returns_and_markup_characters_survive_the_round_trip(tmp_path):
    value = 'line one\r\nline two\rthree <b>&amp;</b> "q" \'a\''
    assert data_values(published(tmp_path, [([1, value], False)]))[0][1] == value


def test_text_that_looks_like_an_ooxml_escape_is_written_so_excel_shows_it_literally(tmp_path):
    path = published(tmp_path, [([1, "keep _x000D_ as typed"], False)])
    with zipfile.ZipFile(path) as archive:
        sheet_xml = archive.read("xl/worksheets/sheet1.xml").decode()
    # Excel decodes _xHHHH_; _x005F_ is its escape for "_". openpyxl reads the raw text without decoding.
    assert "keep _x005F_x000D_ as typed" in sheet_xml


def test_xml_illegal_characters_become_replacement_characters_and_the_file_opens(tmp_path):
    value = "nul\x00 bell\x07 vt\x0b ff\x0c esc\x1b lone\ud800 nonchar\ufffe\uffff tab\tnewline\n ok"
    path = published(tmp_path, [([1, value], False)])
    text = data_values(path)[0][1]
    assert text == "nul\ufffd bell\ufffd vt\ufffd ff\ufffd esc\ufffd lone\ufffd nonchar\ufffd\ufffd tab\tnewline\n ok"
    assert safe_cell_text(value) == text


def test_a_40000_character_value_is_cut_to_the_excel_limit_and_ends_with_the_marker(tmp_path):
    value = "abcdefghij" * 4000
    text = data_values(published(tmp_path, [([1, value], False)]))[0][1]
    assert utf16_units(text) <= EXCEL_CELL_LIMIT
    assert MARKER.search(text) and "40,000 characters in all" in text
    assert value.startswith(text[: MARKER.search(text).start()])


def test_emoji_are_counted_as_two_utf16_units_and_never_split(tmp_path):
    value = "\U0001f600" * 20_000  # 20,000 characters but 40,000 UTF-16 units
    text = data_values(published(tmp_path, [([1, value], False)]))[0][1]
    assert utf16_units(text) <= EXCEL_CELL_LIMIT
    kept = text[: MARKER.search(text).start()]
    assert kept == "\U0001f600" * len(kept)
    assert utf16_units(kept) >= EXCEL_CELL_LIMIT - 100


def test_values_within_the_limit_are_left_whole():
    exactly = "x" * EXCEL_CELL_LIMIT
    assert safe_cell_text(exactly) == exactly
    assert safe_cell_text("\U0001f600" * (EXCEL_CELL_LIMIT // 2)) == "\U0001f600" * (EXCEL_CELL_LIMIT // 2)
    one_over = "x" * (EXCEL_CELL_LIMIT + 1)
    assert MARKER.search(safe_cell_text(one_over)) and utf16_units(safe_cell_text(one_over)) == EXCEL_CELL_LIMIT


# --------------------------------------------------------------------------- crash safety and repair


def test_a_torn_journal_tail_is_cut_off_on_open_and_the_next_publish_is_correct(tmp_path):
    path = tmp_path / "annotator_1_t.xlsx"
    journal = WorkbookJournal(path, COLUMNS)
    journal.append(rows_for(1, 30), last_key=30)
    good_length = journal.journal_path.stat().st_size
    # A crash between the journal fsync and the sidecar replace leaves bytes the sidecar does not count.
    with open(journal.journal_path, "ab") as handle:
        handle.write(os.urandom(5000))

    reopened = WorkbookJournal(path, COLUMNS)
    assert journal.journal_path.stat().st_size == good_length
    assert (reopened.row_count, reopened.last_key) == (30, 30)
    reopened.append(rows_for(31, 5), last_key=35)
    reopened.publish()
    with zipfile.ZipFile(path) as archive:
        assert archive.testzip() is None
    assert [row[0] for row in data_values(path)] == list(range(1, 36))


def test_a_journal_that_does_not_match_its_checksum_starts_over_and_the_old_workbook_stays(tmp_path):
    path = published(tmp_path, rows_for(1, 10))
    before = path.read_bytes()
    journal_path = tmp_path / f".{path.name}.journal"
    data = bytearray(journal_path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    journal_path.write_bytes(bytes(data))

    reopened = WorkbookJournal(path, COLUMNS)
    assert (reopened.row_count, reopened.last_key) == (0, 0)  # the caller sees it must rebuild
    assert path.read_bytes() == before
    reopened.append(rows_for(1, 10), last_key=10)
    reopened.publish()
    assert [row[0] for row in data_values(path)] == list(range(1, 11))


@pytest.mark.parametrize("lost", ["journal", "sidecar"])
def test_a_missing_journal_or_sidecar_means_starting_empty(tmp_path, lost):
    path = published(tmp_path, rows_for(1, 10))
    (tmp_path / (f".{path.name}.journal" + (".json" if lost == "sidecar" else ""))).unlink()
    reopened = WorkbookJournal(path, COLUMNS)
    assert (reopened.row_count, reopened.last_key) == (0, 0)
    assert not (tmp_path / f".{path.name}.journal").exists() or lost == "journal"


def test_changed_columns_start_a_fresh_journal(tmp_path):
    path = published(tmp_path, rows_for(1, 10))
    reopened = WorkbookJournal(path, [*COLUMNS, Column("extra", 10)])
    assert reopened.row_count == 0
    assert WorkbookJournal(path, COLUMNS).row_count == 0  # the old journal is gone, not resurrected


def test_reset_removes_journal_sidecar_and_workbook(tmp_path):
    path = published(tmp_path, rows_for(1, 10))
    journal = WorkbookJournal(path, COLUMNS)
    journal.reset()
    assert os.listdir(tmp_path) == []
    assert (journal.row_count, journal.last_key) == (0, 0)
    journal.append(rows_for(1, 2), last_key=2)
    journal.publish()
    assert len(data_values(path)) == 2


def test_a_publish_that_fails_midway_keeps_the_old_workbook_and_leaves_no_temp_file(tmp_path, monkeypatch):
    path = published(tmp_path, rows_for(1, 10))
    before = path.read_bytes()
    journal = WorkbookJournal(path, COLUMNS)
    journal.append(rows_for(11, 10), last_key=20)

    def broken_copy(*args):
        raise OSError("disk full")

    monkeypatch.setattr(journal_module, "_copy_prefix", broken_copy)
    with pytest.raises(OSError, match="disk full"):
        journal.publish()
    assert path.read_bytes() == before
    assert sorted(os.listdir(tmp_path)) == sorted([path.name, f".{path.name}.journal", f".{path.name}.journal.json"])


def test_sizes_that_would_need_zip64_are_refused_before_writing():
    huge = journal_module._Member(b"xl/worksheets/sheet1.xml", 0, 2**32, 2**32)
    with pytest.raises(OverflowError, match="4 GiB"):
        journal_module._check_zip32([huge])


CHILD = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    sys.path.insert(0, {root!r})
    from workers_app.excel.journal import Column, WorkbookJournal

    journal = WorkbookJournal(Path(sys.argv[1]), [Column("sample id", 12), Column("text", 60)])
    print("ready", flush=True)
    while True:
        key = journal.last_key
        rows = [([key + i, "x" * 900 + str(key + i)], (key + i) % 7 == 0) for i in range(1, {batch} + 1)]
        journal.append(rows, last_key=key + {batch})
        journal.publish()
    """
)


def check_crash_leftovers(folder: Path, path: Path, batch: int) -> int:
    """The workbook is absent or complete; returns its data row count."""
    names = set(os.listdir(folder))
    temps = names - {path.name, f".{path.name}.journal", f".{path.name}.journal.json"}
    # A temporary file of a publish or a sidecar write, named after the file it was to replace.
    named = "|".join(re.escape(f".{target}.") + r"\w{8}\.tmp" for target in (path.name, f".{path.name}.journal.json"))
    assert all(re.fullmatch(named, name) for name in temps), temps
    assert [name for name in names if name.endswith(".xlsx")] in ([], [path.name])
    if not path.exists():
        return 0
    with zipfile.ZipFile(path) as archive:
        assert archive.testzip() is None
        sheet_xml = archive.read("xl/worksheets/sheet1.xml").decode()
    sheet = openpyxl.load_workbook(path, read_only=True).active
    rows = list(sheet.iter_rows(values_only=True))
    count = len(rows) - 1
    assert rows[0] == ("sample id", "text")
    assert [row[0] for row in rows[1:]] == list(range(1, count + 1))
    assert all(row[1].endswith(str(row[0])) for row in rows[1:])
    assert count % batch == 0  # batches are all-or-nothing
    assert sheet.max_row == count + 1
    assert f'<autoFilter ref="A1:B{count + 1}"/>' in sheet_xml
    return count


def test_kill_9_at_random_moments_never_leaves_a_broken_workbook(tmp_path):
    path = tmp_path / "annotator_9_crash.xlsx"
    batch = 10
    seeded = WorkbookJournal(path, [Column("sample id", 12), Column("text", 60)])
    seeded.append([([k, "x" * 900 + str(k)], k % 7 == 0) for k in range(1, 1001)], last_key=1000)
    script = CHILD.format(root=str(PROJECT_ROOT), batch=batch)
    rng = random.Random(9)
    published_counts = []
    for _ in range(15):
        child = subprocess.Popen([sys.executable, "-c", script, str(path)], stdout=subprocess.PIPE, text=True)
        assert child.stdout.readline().strip() == "ready"
        time.sleep(rng.uniform(0, 0.3))
        child.send_signal(signal.SIGKILL)
        child.wait()
        child.stdout.close()
        assert child.returncode == -signal.SIGKILL

        published_counts.append(check_crash_leftovers(tmp_path, path, batch))
        reopened = WorkbookJournal(path, [Column("sample id", 12), Column("text", 60)])
        assert reopened.row_count == reopened.last_key >= max(published_counts)
        assert reopened.row_count % batch == 0
        assert not [name for name in os.listdir(tmp_path) if name.endswith(".tmp")]  # stale temps swept

    assert published_counts[-1] > 1000, "the child never got to publish; the test exercised nothing"
    reopened = WorkbookJournal(path, [Column("sample id", 12), Column("text", 60)])
    reopened.publish()
    assert check_crash_leftovers(tmp_path, path, batch) == reopened.row_count
