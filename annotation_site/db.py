"""Database connections in processes that fork and in threads that wait on the network."""

from __future__ import annotations

import logging

from django.db import connection, connections

log = logging.getLogger(__name__)
# How long a checkpoint after a large write may wait for readers (the workers) to move past the old WAL frames.
CHECKPOINT_WAIT_MS = 2_000


def pooled() -> bool:
    return bool(connection.settings_dict.get("OPTIONS", {}).get("pool"))


def close_before_fork() -> None:
    """A child must never share a connection, or a pool whose threads do not survive the fork: close both here;
    the parent opens a new pool at its next query."""
    connections.close_all()
    for wrapper in connections.all(initialized_only=True):
        if getattr(wrapper, "pool", None) is not None:
            wrapper.close_pool()


def limit_pool(max_size: int) -> None:
    """Bound this process's future pool (a forked fleet worker, before its first query)."""
    pool = connections["default"].settings_dict.get("OPTIONS", {}).get("pool")
    if isinstance(pool, dict):
        pool["max_size"] = max_size


def release_connection() -> None:
    """Hand this thread's connection back to the process's pool before a slow wait (an LLM call), so that a few
    connections serve every thread. Without a pool, or inside a transaction, it stays."""
    if pooled() and not connection.in_atomic_block:
        connection.close()


def checkpoint_wal() -> None:
    """After a large write on SQLite (an import, a restore, a reset), copy the WAL into the database and truncate it
    to nothing: otherwise a file as large as the write stays beside the database while any process has it open.
    Waits at most CHECKPOINT_WAIT_MS for readers; a checkpoint that cannot finish now is left to SQLite's own
    (the WAL is then cut to journal_size_limit at its next reset). Nothing to do on PostgreSQL or in a transaction."""
    if connection.vendor != "sqlite" or connection.in_atomic_block:
        return
    with connection.cursor() as cursor:
        cursor.execute("PRAGMA busy_timeout")
        waited = cursor.fetchone()[0]
        cursor.execute(f"PRAGMA busy_timeout = {CHECKPOINT_WAIT_MS}")
        try:
            cursor.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            busy, _, _ = cursor.fetchone()
        finally:
            cursor.execute(f"PRAGMA busy_timeout = {int(waited)}")
    if busy:
        log.info("WAL checkpoint after a large write: readers kept it busy; SQLite's own checkpoints will finish it")
