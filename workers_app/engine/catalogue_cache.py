"""The annotator and domain rows a worker needs for every task, re-read at most every few seconds.

Reading them for each task was two of the five queries per annotation; staff edits (a new prompt, a
backend error, a disabled annotator) still reach running workers within CACHE_SECONDS.
"""

from __future__ import annotations

import threading
import time

from workers_app.models import Annotator, Domain

from .keys import WorkerKey

CACHE_SECONDS = 2.0

_rows: dict[WorkerKey, tuple[float, Annotator, Domain]] = {}
_lock = threading.Lock()


def catalogue_rows(key: WorkerKey) -> tuple[Annotator, Domain]:
    now = time.monotonic()
    with _lock:
        cached = _rows.get(key)
    if cached is not None and now - cached[0] < CACHE_SECONDS:
        return cached[1], cached[2]
    annotator = Annotator.objects.get(number=key.annotator)
    domain = Domain.objects.get(slug=key.domain)
    with _lock:
        _rows[key] = (now, annotator, domain)
    return annotator, domain


def forget_cached_rows() -> None:
    with _lock:
        _rows.clear()
