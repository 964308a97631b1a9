"""Names shared by the engine and the fleet: queues, workbook files and Redis keys of one worker.

Every Redis key of an install starts with its ``REDIS_KEY_PREFIX`` (``annot:<install id>:``); kombu puts the same
prefix before the keys of Celery's queues, bindings and unacknowledged messages (its ``global_keyprefix``), so a
queue called ``annotator_1_urgency`` is the Redis list ``annot:<install id>:annotator_1_urgency``.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings

# Outcomes are counted per worker in buckets of this many seconds, kept a little over a minute: the live
# throughput of the dashboard, without a query over the outcomes.
RATE_BUCKET_SECONDS = 10
RATE_BUCKETS_KEPT = 8


def redis_key(*parts: object) -> str:
    """A key of this install: its prefix and the parts joined by ':'."""
    return settings.REDIS_KEY_PREFIX + ":".join(map(str, parts))


def broker_key(name: str) -> str:
    """The Redis key kombu uses for one of its own names (a queue, ``unacked``, ``unacked_index``)."""
    return settings.REDIS_KEY_PREFIX + name


@dataclass(frozen=True)
class WorkerKey:
    """One (annotator, domain) pair: one queue, one workbook, one set of counters."""

    annotator: int
    domain: str

    def __str__(self) -> str:
        return f"annotator_{self.annotator}_{self.domain}"

    @classmethod
    def parse(cls, name: str) -> WorkerKey:
        parts = name.split("_", 2)
        prefix, number, domain = parts if len(parts) == 3 else ("", "", "")
        if prefix != "annotator" or not number.isdigit() or not domain:
            raise ValueError(f"not a worker name: {name!r} (expected annotator_<n>_<domain>)")
        return cls(int(number), domain)

    @property
    def queue(self) -> str:
        """The Celery queue's name (what -Q and send_task take)."""
        return str(self)

    @property
    def queue_key(self) -> str:
        """The Redis list that holds the queue's waiting messages."""
        return broker_key(self.queue)

    @property
    def queued_key(self) -> str:
        return redis_key("queued", self)

    def progress_key(self, run_id: int | str) -> str:
        """Its counters of one run (engine.counters)."""
        return redis_key("progress", run_id, self)

    @property
    def recent_key(self) -> str:
        """The statuses of its last outcomes, newest first: the health check's error-rate window."""
        return redis_key("recent", self)

    def rate_key(self, bucket: int) -> str:
        """Outcomes stored in the ``bucket``-th RATE_BUCKET_SECONDS of the epoch."""
        return redis_key("rate", self, bucket)

    @property
    def workbook_report_key(self) -> str:
        """The quick workbook check as the agent of the worker's host last made it (the file lives there)."""
        return redis_key("workbook-report", self)


def rate_limit_key(annotator_number: int) -> str:
    return redis_key("ratelimit", annotator_number)
