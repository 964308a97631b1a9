"""Database connections in processes that fork and in threads that wait on the network."""

from __future__ import annotations

from django.db import connection, connections


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
