"""A job's progress, written by its task on the control worker and read by whoever follows the job (the API, the
workspace's job page): a small JSON note in Redis. A statistic: Redis away never fails the job."""

from __future__ import annotations

import json
import logging
import time

import redis

from workers_app.engine.keys import redis_key
from workers_app.redis_client import get_redis

log = logging.getLogger(__name__)
KEEP_SECONDS = 7 * 24 * 3600
EVERY_SECONDS = 0.5  # a row-by-row progress is written at most this often


def progress_key(kind: str, job: str) -> str:
    return redis_key("api", kind, job, "progress")


def report_progress(kind: str, job: str, done: int, total: int, stage: str) -> None:
    try:
        get_redis().set(progress_key(kind, job), json.dumps({"done": done, "total": total, "stage": stage[:200]}),
                        ex=KEEP_SECONDS)
    except redis.RedisError as exc:
        log.warning("progress of %s job %s not recorded: %s", kind, job, exc)


def read_progress(kind: str, job: str) -> dict | None:
    try:
        raw = get_redis().get(progress_key(kind, job))
    except redis.RedisError:
        return None
    return json.loads(raw) if raw else None


class RowProgress:
    """Counts rows one at a time (the importer's callback) and writes the count at most every EVERY_SECONDS."""

    def __init__(self, kind: str, job: str, total: int | None, stage: str):
        self.kind, self.job, self.total, self.stage = kind, job, total or 0, stage
        self.done = 0
        self._written = 0.0

    def __call__(self, rows: int) -> None:
        self.done += rows
        if time.monotonic() - self._written >= EVERY_SECONDS:
            self.write()

    def write(self) -> None:
        self._written = time.monotonic()
        report_progress(self.kind, self.job, self.done, max(self.total, self.done), self.stage)
