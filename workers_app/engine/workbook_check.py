"""The quick workbook check (opens, holds the store's rows), made where the file is.

A workbook lives in the DATA_DIR of its worker's host. The agent of each host checks its own workbooks and
publishes the result in Redis; the health sweep, wherever it runs, checks local files itself and reads the
published result for the others.
"""

from __future__ import annotations

import time
import zipfile

from django.conf import settings

from workers_app.excel.journal import journaled_row_count
from workers_app.redis_client import get_redis
from workers_app.runs.current import current_run
from workers_app.runs.files import workbook_path

from . import counters
from .integrity import SHEET
from .keys import WorkerKey

REPORT_TTL = 3600


def check_workbook(key: WorkerKey, stored: int) -> tuple[bool, str]:
    """Opens (the zip directory) and holds the store's rows; the hourly integrity job checks every byte."""
    if not workbook_path(key).exists():
        return stored == 0, "no workbook yet" if stored == 0 else f"missing; {stored} stored"
    try:
        with zipfile.ZipFile(workbook_path(key)) as book:
            book.getinfo(SHEET)
    except (zipfile.BadZipFile, KeyError, OSError) as exc:
        return False, f"unreadable: {exc.__class__.__name__}: {exc}"
    rows = journaled_row_count(workbook_path(key))
    if rows is None:
        return False, "its journal is missing or unreadable"
    # A workbook trails the store by at most one flush interval; more than that is a mismatch.
    return rows <= stored <= rows + settings.FLUSH_EVERY_ROWS, f"{rows} rows, {stored} stored"


def publish_workbook_checks(keys: list[WorkerKey], host: str) -> None:
    """Check this host's workbooks against the stored counts and publish each result, in two round trips."""
    client = get_redis()
    stored = counters.read(keys, current_run())
    pipe = client.pipeline(transaction=False)
    now = time.time()
    for key in keys:
        healthy, reason = check_workbook(key, stored[key]["ok"] + stored[key]["malformed"])
        pipe.hset(key.workbook_report_key, mapping={"ok": int(healthy), "reason": reason, "at": now, "host": host})
        pipe.expire(key.workbook_report_key, REPORT_TTL)
    pipe.execute()


def read_report(raw: list, host: str, now: float) -> tuple[bool, str]:
    """A published check (``hmget ok reason at host``) judged for freshness: an old one, or one from another host
    (the worker moved since), says nothing about the file now."""
    ok, reason, at, made_on = raw
    if at is None or made_on != host:
        return False, f"not checked yet on host {host}"
    age = now - float(at)
    if age > 3 * settings.WORKBOOK_REPORT_SECONDS:
        return False, f"host {host} last reported {age:.0f} s ago: {reason}"
    return bool(int(ok)), reason
