"""Append-only xlsx writer whose flush cost does not grow with the workbook.

openpyxl has to parse and rewrite the whole workbook for every batch, which is
O(rows). Here the big worksheet member is kept pre-compressed in a journal: a
raw DEFLATE stream made of independent, byte-aligned pieces (one per batch,
each from a fresh compressor ended with Z_FULL_FLUSH, no final block), so new
rows are compressed once and the stream is only ever extended. Publishing
writes the sheet member as: a tiny fresh piece with the parts that change with
the row count and must come first (<dimension>), the journal bytes copied
verbatim, and a tail piece that closes the stream. The zip container is
written by hand because zipfile cannot take pre-compressed data; the workbook
is then replaced atomically.

Durability order: journal bytes are written and fsynced first, then the small
JSON sidecar that says how many of those bytes count is replaced atomically.
Bytes past the sidecar's length are the leftovers of a crash and are cut off.

Single writer per workbook is assumed (one annotation worker owns one file).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import time
import zlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from annotation_site.files import fsync_dir, replacing

# copy_prefix, Member and check_zip32 keep their private names here because tests/test_excel_journal.py reaches
# them through this module: it patches _copy_prefix to make a publish fail midway.
from .cells import EXCEL_CELL_LIMIT, cell, column_letter, safe_cell_text, text_cell, xml_attr, xml_text
from .deflate import crc_concat, deflate_final, deflate_piece
from .fileio import copy_prefix as _copy_prefix
from .fileio import crc_of_prefix, pwrite_all, write_all
from .zipparts import Member as _Member
from .zipparts import central_directory, dos_timestamp, local_header, small_member
from .zipparts import check_zip32 as _check_zip32

__all__ = ["EXCEL_CELL_LIMIT", "Column", "WorkbookJournal", "journaled_row_count", "safe_cell_text"]

log = logging.getLogger(__name__)

EXCEL_MAX_ROWS = 1_048_576
EXCEL_MAX_COLUMNS = 16_384
_JOURNAL_FORMAT = 1

_SHEET_TITLE_FORBIDDEN = re.compile(r"[\[\]:*?/\\\x00-\x1f]")
_TEMP_NAME_TAIL = r"[A-Za-z0-9_]{8}\.tmp"  # tempfile.mkstemp's 8 random characters

_NS_MAIN = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
_NS_REL = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
_NS_PKG_REL = "http://schemas.openxmlformats.org/package/2006/relationships"
_XML_DECL = '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
_SHEET_MEMBER = "xl/worksheets/sheet1.xml"

_STYLE_HEADER = 1
_STYLE_HIGHLIGHT = 2


@dataclass(frozen=True)
class Column:
    title: str
    width: float


@dataclass(frozen=True)
class _State:
    """Mirror of the sidecar. journal_* describe the compressed file; crc32/uncompressed_length its inflated
    XML (the sheet minus the prefix and tail added at publish). last_key is the caller's bookmark."""

    journal_length: int = 0
    journal_crc32: int = 0
    crc32: int = 0
    uncompressed_length: int = 0
    row_count: int = 0
    last_key: int = 0


_STATE_FIELDS = ("journal_length", "journal_crc32", "crc32", "uncompressed_length", "row_count", "last_key")


class WorkbookJournal:
    """One workbook, its DEFLATE journal and the sidecar that says how much of the journal is valid."""

    def __init__(self, path: Path, columns: Sequence[Column], sheet_title: str = "annotations") -> None:
        self.path = Path(path)
        self.columns = tuple(columns)
        self.sheet_title = sheet_title
        _validate_layout(self.columns, sheet_title)
        self._folder = self.path.parent
        self.journal_path = self._folder / f".{self.path.name}.journal"
        self.sidecar_path = self._folder / f".{self.path.name}.journal.json"
        self._letters = [column_letter(i) for i in range(1, len(self.columns) + 1)]
        self._last_column = self._letters[-1]
        self._head = self._head_xml().encode("utf-8")
        self._head_digest = hashlib.sha256(self._head).hexdigest()
        self._remove_stale_temps()
        self._state = self._open()

    # ---- public API

    @property
    def row_count(self) -> int:
        return self._state.row_count

    @property
    def last_key(self) -> int:
        return self._state.last_key

    def append(self, rows: Iterable[tuple[Sequence[object], bool]], last_key: int) -> int:
        """Add rows after the existing ones; durable on return, visible in the workbook after publish()."""
        if isinstance(last_key, bool) or not isinstance(last_key, int):
            raise TypeError("last_key must be an int")
        if last_key < self._state.last_key:
            raise ValueError(f"last_key went backwards: {last_key} < {self._state.last_key}")
        self._ensure_started()
        state = self._state
        # Build the whole batch first so a bad value cannot leave half a batch behind.
        parts: list[str] = []
        for values, highlight in rows:
            number = state.row_count + 2 + len(parts)  # row 1 is the header
            if number > EXCEL_MAX_ROWS:
                raise ValueError(f"Excel holds at most {EXCEL_MAX_ROWS:,} rows including the header")
            parts.append(self._row_xml(number, values, highlight))
        added = len(parts)
        if not added and last_key == state.last_key:
            return 0
        new_state = replace(state, last_key=last_key)
        if added:
            data = "".join(parts).encode("utf-8")
            piece = deflate_piece(data)
            self._write_journal(state.journal_length, piece)
            new_state = replace(
                new_state,
                journal_length=state.journal_length + len(piece),
                journal_crc32=zlib.crc32(piece, state.journal_crc32),
                crc32=zlib.crc32(data, state.crc32),
                uncompressed_length=state.uncompressed_length + len(data),
                row_count=state.row_count + added,
            )
        self._write_sidecar(new_state)
        self._state = new_state
        return added

    def publish(self) -> None:
        """Atomically replace the workbook with one holding every journaled row."""
        self._ensure_started()
        state = self._state
        last_row = state.row_count + 1
        # The prefix carries <dimension>, which precedes the journaled part and changes with every row.
        prefix = self._prefix_xml(last_row).encode("utf-8")
        packed_prefix = deflate_piece(prefix)
        tail = self._tail_xml(last_row).encode("utf-8")
        packed_tail = deflate_final(tail)
        sheet = _Member(
            _SHEET_MEMBER.encode("ascii"),
            zlib.crc32(tail, crc_concat(zlib.crc32(prefix), state.crc32, state.uncompressed_length)),
            len(packed_prefix) + state.journal_length + len(packed_tail),
            len(prefix) + state.uncompressed_length + len(tail),
        )
        small = [small_member(name, xml) for name, xml in self._package_parts(last_row)]
        _check_zip32([member for member, _ in small] + [sheet])
        with replacing(self.path) as (fd, _):
            self._write_zip(fd, small, sheet, packed_prefix, packed_tail)
            os.fchmod(fd, self._workbook_mode())

    def reset(self) -> None:
        """Forget everything; the caller rebuilds from its store."""
        # Sidecar first: a journal without a sidecar is discarded on open, never trusted.
        for path in (self.sidecar_path, self.journal_path, self.path):
            path.unlink(missing_ok=True)
        self._remove_stale_temps()
        fsync_dir(self._folder)
        self._state = _State()

    # ---- opening and repair

    def _open(self) -> _State:
        state, problem = self._read_sidecar()
        if state is None:
            if problem:
                self._discard(problem)
            elif self.journal_path.exists():
                self._discard("journal without sidecar")
            return _State()
        try:
            size = self.journal_path.stat().st_size
        except FileNotFoundError:
            self._discard("sidecar without journal")
            return _State()
        if size < state.journal_length:
            self._discard(f"journal has {size} bytes, sidecar expects {state.journal_length}")
            return _State()
        if size > state.journal_length:
            # Crash after the journal write but before the sidecar replace: the extra bytes never counted.
            log.warning("%s: cutting %d torn bytes off the journal", self.journal_path, size - state.journal_length)
            with open(self.journal_path, "r+b") as handle:
                handle.truncate(state.journal_length)
                os.fsync(handle.fileno())
        # Cheap (one read of the compressed bytes) and catches a journal that is not what we wrote.
        if crc_of_prefix(self.journal_path, state.journal_length) != state.journal_crc32:
            self._discard("journal checksum does not match its sidecar")
            return _State()
        return state

    def _read_sidecar(self) -> tuple[_State | None, str]:
        try:
            raw = json.loads(self.sidecar_path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None, ""
        except (OSError, ValueError) as exc:
            return None, f"unreadable sidecar ({exc})"
        if not isinstance(raw, dict) or raw.get("format") != _JOURNAL_FORMAT:
            return None, "unknown sidecar format"
        if raw.get("head_sha256") != self._head_digest:
            return None, "columns or sheet title changed"
        values = [raw.get(name) for name in _STATE_FIELDS]
        if not all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in values):
            return None, "sidecar has missing or invalid numbers"
        state = _State(*values)
        if state.journal_length == 0 or state.uncompressed_length < len(self._head):
            return None, "sidecar describes an impossible journal"
        return state, ""

    def _discard(self, reason: str) -> None:
        log.warning("%s: discarding journal (%s); the caller must rebuild it", self.journal_path, reason)
        self.sidecar_path.unlink(missing_ok=True)
        self.journal_path.unlink(missing_ok=True)
        fsync_dir(self._folder)

    def _remove_stale_temps(self) -> None:
        """Temp files of a publish or sidecar write killed midway (annotation_site.files.replacing names them after
        the file they were to replace); they never carry the workbook's own name."""
        pattern = re.compile("|".join(re.escape(f".{target.name}.") + _TEMP_NAME_TAIL
                                      for target in (self.path, self.sidecar_path)))
        for entry in os.scandir(self._folder):
            if pattern.fullmatch(entry.name):
                Path(entry.path).unlink(missing_ok=True)

    # ---- durable writes

    def _ensure_started(self) -> None:
        if self._state.journal_length:
            return
        piece = deflate_piece(self._head)
        self._write_journal(0, piece)
        state = _State(len(piece), zlib.crc32(piece), zlib.crc32(self._head), len(self._head), 0, 0)
        self._write_sidecar(state)
        self._state = state

    def _write_journal(self, offset: int, piece: bytes) -> None:
        fd = os.open(self.journal_path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            pwrite_all(fd, piece, offset)
            # Drops leftovers of an earlier failed write so the file length matches the sidecar-to-be.
            os.ftruncate(fd, offset + len(piece))
            os.fsync(fd)
        finally:
            os.close(fd)
        if offset == 0:
            fsync_dir(self._folder)

    def _write_sidecar(self, state: _State) -> None:
        payload = {"format": _JOURNAL_FORMAT, "head_sha256": self._head_digest}
        payload.update({name: getattr(state, name) for name in _STATE_FIELDS})
        data = json.dumps(payload, indent=1).encode("utf-8")
        with replacing(self.sidecar_path) as (fd, _):
            write_all(fd, data)

    def _write_zip(
        self, fd: int, small: list[tuple[_Member, bytes]], sheet: _Member, packed_prefix: bytes, packed_tail: bytes
    ) -> None:
        stamp = dos_timestamp(time.time())
        offsets: list[int] = []
        position = 0
        for member, packed in small:
            header = local_header(member, stamp)
            write_all(fd, header + packed)
            offsets.append(position)
            position += len(header) + len(packed)
        header = local_header(sheet, stamp)
        write_all(fd, header + packed_prefix)
        journal_fd = os.open(self.journal_path, os.O_RDONLY)
        try:
            _copy_prefix(journal_fd, fd, self._state.journal_length)
        finally:
            os.close(journal_fd)
        write_all(fd, packed_tail)
        offsets.append(position)
        position += len(header) + sheet.compressed_size
        members = [member for member, _ in small] + [sheet]
        write_all(fd, central_directory(members, offsets, stamp, position))

    def _workbook_mode(self) -> int:
        """mkstemp makes 0600 files; keep the permissions readers of the old workbook relied on."""
        try:
            return self.path.stat().st_mode & 0o777
        except FileNotFoundError:
            return 0o644

    # ---- XML

    def _row_xml(self, number: int, values: Sequence[object], highlight: bool) -> str:
        if isinstance(values, (str, bytes)):
            raise TypeError("row values must be a sequence of cell values, not a string")
        if len(values) > len(self.columns):
            raise ValueError(f"row {number} has {len(values)} values for {len(self.columns)} columns")
        style = f' s="{_STYLE_HIGHLIGHT}"' if highlight else ""
        cells = [cell(f"{letter}{number}", value, style) for letter, value in zip(self._letters, values)]
        if highlight:
            # Empty trailing cells still get the fill, so the whole row reads as flagged.
            cells += [f'<c r="{letter}{number}"{style}/>' for letter in self._letters[len(values):]]
            return f'<row r="{number}"{style} customFormat="1">{"".join(cells)}</row>'
        return f'<row r="{number}">{"".join(cells)}</row>'

    def _head_xml(self) -> str:
        widths = "".join(
            f'<col min="{i}" max="{i}" width="{column.width:g}" customWidth="1"/>'
            for i, column in enumerate(self.columns, start=1)
        )
        header_style = f' s="{_STYLE_HEADER}"'
        header = "".join(
            text_cell(f"{letter}1", column.title, header_style) for letter, column in zip(self._letters, self.columns)
        )
        return (
            '<sheetViews><sheetView workbookViewId="0">'
            '<pane ySplit="1" topLeftCell="A2" activePane="bottomLeft" state="frozen"/>'
            '<selection pane="bottomLeft" activeCell="A2" sqref="A2"/>'
            "</sheetView></sheetViews>"
            '<sheetFormatPr defaultRowHeight="15"/>'
            f"<cols>{widths}</cols>"
            f'<sheetData><row r="1">{header}</row>'
        )

    def _prefix_xml(self, last_row: int) -> str:
        # Without <dimension>, openpyxl's read-only mode reports max_row as None.
        return (
            f'{_XML_DECL}<worksheet xmlns="{_NS_MAIN}" xmlns:r="{_NS_REL}">'
            '<sheetPr><outlinePr summaryBelow="1" summaryRight="1"/></sheetPr>'
            f'<dimension ref="A1:{self._last_column}{last_row}"/>'
        )

    def _tail_xml(self, last_row: int) -> str:
        return (
            f'</sheetData><autoFilter ref="A1:{self._last_column}{last_row}"/>'
            '<pageMargins left="0.7" right="0.7" top="0.75" bottom="0.75" header="0.3" footer="0.3"/>'
            "</worksheet>"
        )

    def _package_parts(self, last_row: int) -> list[tuple[str, str]]:
        quoted_title = "'" + self.sheet_title.replace("'", "''") + "'"
        filter_range = f"{quoted_title}!$A$1:${self._last_column}${last_row}"
        workbook = (
            f'{_XML_DECL}<workbook xmlns="{_NS_MAIN}" xmlns:r="{_NS_REL}">'
            "<workbookPr/><bookViews><workbookView activeTab=\"0\"/></bookViews>"
            f'<sheets><sheet name="{xml_attr(self.sheet_title)}" sheetId="1" r:id="rId1"/></sheets>'
            '<definedNames><definedName name="_xlnm._FilterDatabase" localSheetId="0" hidden="1">'
            f"{xml_text(filter_range)}</definedName></definedNames>"
            '<calcPr calcId="191029"/></workbook>'
        )
        return [
            ("[Content_Types].xml", _CONTENT_TYPES),
            ("_rels/.rels", _ROOT_RELS),
            ("xl/workbook.xml", workbook),
            ("xl/_rels/workbook.xml.rels", _WORKBOOK_RELS),
            ("xl/styles.xml", _STYLES),
        ]


def _validate_layout(columns: Sequence[Column], sheet_title: str) -> None:
    if not 1 <= len(columns) <= EXCEL_MAX_COLUMNS:
        raise ValueError(f"need 1 to {EXCEL_MAX_COLUMNS} columns, got {len(columns)}")
    for column in columns:
        if not 0 < column.width <= 255:
            raise ValueError(f"column {column.title!r}: Excel widths run from 0 to 255, got {column.width}")
    if not 1 <= len(sheet_title) <= 31 or _SHEET_TITLE_FORBIDDEN.search(sheet_title):
        raise ValueError(f"invalid Excel sheet title {sheet_title!r} (1-31 characters, none of []:*?/\\)")
    if sheet_title.startswith("'") or sheet_title.endswith("'"):
        raise ValueError("an Excel sheet title may not start or end with an apostrophe")


_CONTENT_TYPES = (
    f"{_XML_DECL}"
    '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
    '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
    '<Default Extension="xml" ContentType="application/xml"/>'
    '<Override PartName="/xl/workbook.xml" '
    'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/>'
    '<Override PartName="/xl/worksheets/sheet1.xml" '
    'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/>'
    '<Override PartName="/xl/styles.xml" '
    'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.styles+xml"/>'
    "</Types>"
)

_ROOT_RELS = (
    f'{_XML_DECL}<Relationships xmlns="{_NS_PKG_REL}">'
    f'<Relationship Id="rId1" Type="{_NS_REL}/officeDocument" Target="xl/workbook.xml"/>'
    "</Relationships>"
)

_WORKBOOK_RELS = (
    f'{_XML_DECL}<Relationships xmlns="{_NS_PKG_REL}">'
    f'<Relationship Id="rId1" Type="{_NS_REL}/worksheet" Target="worksheets/sheet1.xml"/>'
    f'<Relationship Id="rId2" Type="{_NS_REL}/styles" Target="styles.xml"/>'
    "</Relationships>"
)

# xf 0: default, xf 1 (_STYLE_HEADER): bold, xf 2 (_STYLE_HIGHLIGHT): light amber fill for flagged rows.
_STYLES = (
    f'{_XML_DECL}<styleSheet xmlns="{_NS_MAIN}">'
    '<fonts count="2">'
    '<font><sz val="11"/><name val="Calibri"/><family val="2"/></font>'
    '<font><b/><sz val="11"/><name val="Calibri"/><family val="2"/></font>'
    "</fonts>"
    '<fills count="3">'
    '<fill><patternFill patternType="none"/></fill>'
    '<fill><patternFill patternType="gray125"/></fill>'
    '<fill><patternFill patternType="solid"><fgColor rgb="FFFFEB9C"/><bgColor indexed="64"/></patternFill></fill>'
    "</fills>"
    '<borders count="1"><border><left/><right/><top/><bottom/><diagonal/></border></borders>'
    '<cellStyleXfs count="1"><xf numFmtId="0" fontId="0" fillId="0" borderId="0"/></cellStyleXfs>'
    '<cellXfs count="3">'
    '<xf numFmtId="0" fontId="0" fillId="0" borderId="0" xfId="0"/>'
    '<xf numFmtId="0" fontId="1" fillId="0" borderId="0" xfId="0" applyFont="1"/>'
    '<xf numFmtId="0" fontId="0" fillId="2" borderId="0" xfId="0" applyFill="1"/>'
    "</cellXfs>"
    '<cellStyles count="1"><cellStyle name="Normal" xfId="0" builtinId="0"/></cellStyles>'
    '<dxfs count="0"/><tableStyles count="0" defaultTableStyle="TableStyleMedium9" defaultPivotStyle="PivotStyleLight16"/>'
    "</styleSheet>"
)


def journaled_row_count(workbook: Path) -> int | None:
    """Rows the journal beside ``workbook`` says it holds, from the small sidecar alone (None if unreadable).

    Cheap enough for a health sweep every few seconds; ``WorkbookJournal`` itself verifies the journal.
    """
    sidecar = Path(workbook).parent / f".{Path(workbook).name}.journal.json"
    try:
        return int(json.loads(sidecar.read_text(encoding="utf-8"))["row_count"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
