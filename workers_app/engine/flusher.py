"""Inside a worker process: flush its workbooks every N new rows or T seconds, at start and at shutdown."""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from functools import cache

from django.conf import settings
from django.db import close_old_connections

from .flush import flush_workbook
from .keys import WorkerKey

log = logging.getLogger(__name__)


class Flusher:
    def __init__(self, every_rows: int, every_seconds: float):
        self.every_rows = every_rows
        self.every_seconds = every_seconds
        self.pending: Counter[WorkerKey] = Counter()
        self.last_flush: dict[WorkerKey, float] = {}
        self.lock = threading.Lock()
        self.wake = threading.Event()
        self.stopping = threading.Event()
        self.thread: threading.Thread | None = None

    def note_stored(self, key: WorkerKey, count: int) -> None:
        if not count:
            return
        with self.lock:
            self.pending[key] += count
            due = self.pending[key] >= self.every_rows
        if due:
            self.wake.set()

    def start(self, keys: list[WorkerKey]) -> None:
        # Rows stored before a crash may be missing from the workbook: the thread catches up first, off the path
        # of the worker's start (thirty workers starting at once on two cores wait for each other's CPU).
        self.thread = threading.Thread(target=self._run, args=(keys,), name="workbook-flusher", daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.stopping.set()
        self.wake.set()
        if self.thread is not None:
            self.thread.join(timeout=30)
        with self.lock:
            keys = list(self.pending)
        self.flush(keys)

    def flush(self, keys: list[WorkerKey]) -> None:
        for key in keys:
            with self.lock:
                self.pending[key] = 0
            self.last_flush[key] = time.monotonic()
            try:
                flush_workbook(key)
            except Exception:  # a failed flush must not kill the worker; the next one retries from the store
                log.exception("flush of %s failed", key)
            finally:
                close_old_connections()

    def _due(self) -> list[WorkerKey]:
        now = time.monotonic()
        with self.lock:
            return [key for key, count in self.pending.items() if count and (
                count >= self.every_rows or now - self.last_flush.get(key, 0) >= self.every_seconds)]

    def _run(self, keys: list[WorkerKey]) -> None:
        self.flush(keys)
        while not self.stopping.is_set():
            self.wake.wait(timeout=1.0)
            self.wake.clear()
            self.flush(self._due())


@cache
def process_flusher() -> Flusher:
    """The one flusher of this worker process, shared by its task threads, its hooks and its control commands."""
    return Flusher(settings.FLUSH_EVERY_ROWS, settings.FLUSH_EVERY_SECONDS)
