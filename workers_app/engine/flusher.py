"""Inside a worker process: flush its workbooks every N new rows or T seconds, at start and at shutdown."""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from functools import cache

from django.conf import settings
from django.db import close_old_connections

from workers_app.models import Run
from workers_app.runs.current import current_run, run_by_id

from .flush import flush_workbook
from .keys import WorkerKey

log = logging.getLogger(__name__)


class Flusher:
    def __init__(self, every_rows: int, every_seconds: float):
        self.every_rows = every_rows
        self.every_seconds = every_seconds
        # Rows stored and not yet in a workbook, per worker and run: a message of the previous run finishing after a
        # switch still reaches that run's workbook.
        self.pending: Counter[tuple[WorkerKey, int]] = Counter()
        self.last_flush: dict[tuple[WorkerKey, int], float] = {}
        self.lock = threading.Lock()
        self.wake = threading.Event()
        self.stopping = threading.Event()
        self.thread: threading.Thread | None = None

    def note_stored(self, key: WorkerKey, run: Run, count: int) -> None:
        if not count:
            return
        with self.lock:
            self.pending[key, run.pk] += count
            due = self.pending[key, run.pk] >= self.every_rows
        if due:
            self.wake.set()

    def start(self, keys: list[WorkerKey]) -> None:
        # Rows stored before a crash may be missing from the current run's workbooks: the thread catches up first,
        # off the path of the worker's start (thirty workers starting at once on two cores wait for each other's
        # CPU).
        self.thread = threading.Thread(target=self._run, args=(keys,), name="workbook-flusher", daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.stopping.set()
        self.wake.set()
        if self.thread is not None:
            self.thread.join(timeout=30)
        with self.lock:
            pending = list(self.pending)
        self._flush_runs(pending)

    def flush(self, keys: list[WorkerKey]) -> None:
        """The current run's workbooks of these workers."""
        run = current_run()
        self._flush_runs([(key, run.pk) for key in keys])

    def _flush_runs(self, entries: list[tuple[WorkerKey, int]]) -> None:
        for key, run_id in entries:
            with self.lock:
                self.pending[key, run_id] = 0
            self.last_flush[key, run_id] = time.monotonic()
            try:
                run = run_by_id(run_id)
                if run is not None:  # a deleted run has no workbook to write
                    flush_workbook(key, run=run)
            except Exception:  # a failed flush must not kill the worker; the next one retries from the store
                log.exception("flush of %s failed", key)
            finally:
                close_old_connections()

    def _due(self) -> list[tuple[WorkerKey, int]]:
        now = time.monotonic()
        with self.lock:
            return [key for key, count in self.pending.items() if count and (
                count >= self.every_rows or now - self.last_flush.get(key, 0) >= self.every_seconds)]

    def _run(self, keys: list[WorkerKey]) -> None:
        self.flush(keys)
        while not self.stopping.is_set():
            self.wake.wait(timeout=1.0)
            self.wake.clear()
            self._flush_runs(self._due())


@cache
def process_flusher() -> Flusher:
    """The one flusher of this worker process, shared by its task threads, its hooks and its control commands."""
    return Flusher(settings.FLUSH_EVERY_ROWS, settings.FLUSH_EVERY_SECONDS)
