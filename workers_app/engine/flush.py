"""Write a worker's workbook from the store: only the rows it does not hold yet, then an atomic replace."""

from __future__ import annotations

import fcntl
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from workers_app.excel.journal import Column, WorkbookJournal
from workers_app.models import Outcome, Run
from workers_app.runs.current import current_run
from workers_app.runs.files import annotations_dir, workbook_path

from .keys import WorkerKey

COLUMNS = (
    Column("sample id", 14), Column("text", 60), Column("label", 24), Column("status", 11),
    Column("reason", 16), Column("raw answer", 60), Column("model", 20), Column("prompt version", 9),
    Column("stored at (UTC)", 22), Column("attempts", 9), Column("latency ms", 10),
)
BATCH = 2000
_FIELDS = ("id", "sample__external_id", "sample__text", "labels", "status", "reason", "raw_answer", "model",
           "prompt_version", "created_at", "attempts", "latency_ms")


@dataclass(frozen=True)
class FlushResult:
    worker: str
    added: int
    rows: int
    rebuilt: bool


@contextmanager
def workbook_lock(key: WorkerKey, run: Run) -> Iterator[None]:
    """One flusher per workbook at a time; an flock dies with its process, so a kill leaves no stale lock."""
    folder = annotations_dir(run)
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / f".{key}.lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield


def _row(values: tuple) -> tuple[list[object], bool]:
    (_, external_id, text, labels, status, reason, raw, model, version, created, attempts, latency) = values
    label = "; ".join(labels) if status == Outcome.Status.OK else ""
    return [external_id, text, label, status, reason, raw, model, version,
            created.strftime("%Y-%m-%d %H:%M:%S"), attempts, latency], status != Outcome.Status.OK


def _batches(rows: Iterator[tuple]) -> Iterator[list[tuple]]:
    batch: list[tuple] = []
    for row in rows:
        batch.append(row)
        if len(batch) == BATCH:
            yield batch
            batch = []
    if batch:
        yield batch


def _journal(key: WorkerKey, run: Run) -> WorkbookJournal:
    return WorkbookJournal(workbook_path(key, run), COLUMNS, sheet_title=str(key)[:31])


def delete_workbook(key: WorkerKey, run: Run | None = None) -> None:
    """Remove the workbook and its journal; the next flush rebuilds it from the store."""
    run = run or current_run()
    with workbook_lock(key, run):
        _journal(key, run).reset()


def flush_workbook(key: WorkerKey, *, run: Run | None = None, republish: bool = False) -> FlushResult:
    """Append the rows the run's workbook lacks (the current run's when not given); ``republish`` rewrites the
    file even when none are new."""
    run = run or current_run()
    outcomes = Outcome.objects.filter(run=run, annotator__number=key.annotator, domain__slug=key.domain)
    with workbook_lock(key, run):
        journal = _journal(key, run)
        # Ids are handed out before commit: a row committed late can sit below the last id written.
        # The count tells, and the journal is rebuilt from the store then (never the case on SQLite).
        rebuilt = journal.row_count != outcomes.filter(id__lte=journal.last_key).count()
        if rebuilt:
            journal.reset()
        added = 0
        new = outcomes.filter(id__gt=journal.last_key).order_by("id").values_list(*_FIELDS)
        for batch in _batches(new.iterator(chunk_size=BATCH)):
            added += journal.append((_row(values) for values in batch), last_key=batch[-1][0])
        if added or rebuilt or republish or not journal.path.exists():
            journal.publish()
        return FlushResult(str(key), added, journal.row_count, rebuilt)
