"""Names shared by the engine and the fleet: queues, workbook files and Redis keys of one worker."""

from __future__ import annotations

from dataclasses import dataclass

PREFIX = "annot"
# Outcomes are counted per worker in buckets of this many seconds, kept a little over a minute: the live
# throughput of the dashboard, without a query over the outcomes.
RATE_BUCKET_SECONDS = 10
RATE_BUCKETS_KEPT = 8


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
        return str(self)

    @property
    def queued_key(self) -> str:
        return f"{PREFIX}:queued:{self}"

    @property
    def progress_key(self) -> str:
        return f"{PREFIX}:progress:{self}"

    @property
    def recent_key(self) -> str:
        """The statuses of its last outcomes, newest first: the health check's error-rate window."""
        return f"{PREFIX}:recent:{self}"

    def rate_key(self, bucket: int) -> str:
        """Outcomes stored in the ``bucket``-th RATE_BUCKET_SECONDS of the epoch."""
        return f"{PREFIX}:rate:{self}:{bucket}"

    @property
    def workbook_report_key(self) -> str:
        """The quick workbook check as the agent of the worker's host last made it (the file lives there)."""
        return f"{PREFIX}:workbook-report:{self}"


def rate_limit_key(annotator_number: int) -> str:
    return f"{PREFIX}:ratelimit:{annotator_number}"
