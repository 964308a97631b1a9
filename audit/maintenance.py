"""The audit log is append-only in the database too (the triggers of migration 0003): every UPDATE is refused, and
every DELETE or TRUNCATE unless a maintenance window is open, i.e. ``audit_maintenance`` holds a row. No model maps
that table, so neither flush nor dumpdata nor our code sees it; only Django's test runner opens a window, to empty
the log between tests."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from django.db import transaction
from django.db.backends.base.base import BaseDatabaseWrapper
from django.test.utils import _TestState

MAINTENANCE_TABLE = "audit_maintenance"


def under_test_runner() -> bool:
    # setup_test_environment(), which every Django test runner calls (pytest-django's too) and no deployment does,
    # keeps its saved_data here until teardown. A private name, but it fails safe: were it renamed, flush would
    # refuse and the test suite would say so at once. (mail.outbox, the public trace, is also made by the locmem
    # email backend outside tests.)
    return hasattr(_TestState, "saved_data")


@contextmanager
def maintenance_window(connection: BaseDatabaseWrapper, reason: str) -> Iterator[None]:
    """One transaction: the window closes with it, and no other connection ever sees it open."""
    with transaction.atomic(using=connection.alias):
        with connection.cursor() as cursor:
            cursor.execute(f"INSERT INTO {MAINTENANCE_TABLE} (reason) VALUES (%s)", [reason])
        yield
        with connection.cursor() as cursor:
            cursor.execute(f"DELETE FROM {MAINTENANCE_TABLE}")
