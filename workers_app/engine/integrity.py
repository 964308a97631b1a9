"""verify_integrity: per worker, the store against its workbook and its Redis counters."""

from __future__ import annotations

import zipfile
import zlib
from dataclasses import asdict, dataclass, field
from pathlib import Path

from workers_app.runs.files import workbook_path

from .flush import flush_workbook
from .keys import WorkerKey
from .queues import counts_from_store, progress, sync_checkpoints, worker_keys

SHEET = "xl/worksheets/sheet1.xml"


class UnreadableWorkbook(Exception):
    pass


def workbook_rows(path: Path) -> int:
    """Data rows in a workbook, reading (and so CRC-checking) the whole sheet without parsing it."""
    rows, carry = 0, b""
    try:
        with zipfile.ZipFile(path) as book, book.open(SHEET) as sheet:
            while chunk := sheet.read(1 << 20):
                data = carry + chunk
                rows += data.count(b"<row ")
                carry = data[-4:]
                rows -= carry.count(b"<row ")  # counted again with the next chunk
    except (zipfile.BadZipFile, KeyError, zlib.error, OSError, EOFError) as exc:
        raise UnreadableWorkbook(f"{exc.__class__.__name__}: {exc}") from exc
    rows += carry.count(b"<row ")
    return max(rows - 1, 0)  # the header row


@dataclass
class WorkerIntegrity:
    worker: str
    stored: int
    workbook_rows: int | None
    counters: dict
    problems: list[str] = field(default_factory=list)
    repaired: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems or len(self.repaired) == len(self.problems)


def _check(key: WorkerKey, counts: dict[str, int], repair: bool) -> WorkerIntegrity:
    stored = counts["ok"] + counts["malformed"]
    cached = progress(key)
    report = WorkerIntegrity(str(key), stored, None, cached)
    if cached != counts:
        report.problems.append(f"Redis counters {cached} differ from the store {counts}")
        if repair:
            sync_checkpoints(key.annotator, key.domain)
            report.repaired.append("counters rebuilt from the store")
    if not workbook_path(key).exists():
        if stored:
            report.problems.append(f"workbook missing while the store holds {stored} row(s)")
    else:
        try:
            report.workbook_rows = workbook_rows(workbook_path(key))
            if report.workbook_rows != stored:
                report.problems.append(f"workbook has {report.workbook_rows} row(s), the store {stored}")
        except UnreadableWorkbook as exc:
            report.problems.append(f"workbook unreadable: {exc}")
    if repair and len(report.repaired) < len(report.problems):
        result = flush_workbook(key, republish=True)
        report.workbook_rows = result.rows
        report.repaired.append(f"workbook rewritten from the store ({result.rows} rows)")
    return report


def verify_integrity(*, repair: bool = True, annotator: int | None = None,
                     domain: str | None = None) -> list[WorkerIntegrity]:
    keys = worker_keys(annotator, domain)
    return [_check(key, counts, repair) for key, counts in counts_from_store(keys).items()]


def as_dicts(reports: list[WorkerIntegrity]) -> list[dict]:
    return [{**asdict(r), "ok": r.ok} for r in reports]
