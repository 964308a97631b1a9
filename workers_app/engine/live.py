"""The Redis contract between the fleet agent, its workers and everyone who reads them.

What each side writes (all keys under the install's prefix, see ``keys.redis_key``):

- a worker, every HEARTBEAT_SECONDS: ``heartbeat:<worker>``, a hash ``at, pid, rss, consuming, current,
  inflight_target`` that expires when the worker stops beating;
- the engine, with every stored outcome: ``progress:<worker>`` (``ok, malformed, last_at``), ``recent:<worker>``
  (the statuses of the last outcomes) and the per-10-second ``rate:<worker>:<bucket>`` counters;
- the engine, with every stored answer to a gold item of a run with gold checks: ``gold:<run id>``, a hash of each
  annotator's right (1) and wrong (0) gold answers in the run's window, rebuilt from the store when missing
  (``engine.gold``);
- an agent, every WORKBOOK_REPORT_SECONDS: ``workbook-report:<worker>`` for the workbooks on its host;
- whoever gives a worker work after it had none (a launch or resume, a fill of its empty queue, a requeue):
  ``work-since:<worker>``, the time that work became available, from which the health check counts idleness;
- anyone who changes what an agent should run: a push to ``agent:<host>:wake``, so it looks at once.

Readers (the health checks, the dashboard, the worker page, the admin, the API, /metrics, the agent's drift check)
take all of it for any number of workers in one pipelined round trip: ``read_live``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from workers_app.redis_client import get_redis
from workers_app.runs.current import current_run

from .keys import RATE_BUCKET_SECONDS, WorkerKey, redis_key

HEARTBEAT_TTL = 300
WORK_SINCE_TTL = 7 * 24 * 3600  # older than any idleness the health check could measure against it
# The current rate bucket and the five before it: the last 50-60 seconds.
RATE_WINDOW_BUCKETS = 6


def heartbeat_key(key: WorkerKey) -> str:
    return redis_key("heartbeat", key)


def wake_key(host: str) -> str:
    return redis_key("agent", host, "wake")


def wake_agent(host: str) -> None:
    """Tell the agent of ``host`` to reconcile now rather than at its next half-second look."""
    client = get_redis()
    client.rpush(wake_key(host), 1)
    client.expire(wake_key(host), 60)


def work_since_key(key: WorkerKey) -> str:
    return redis_key("work-since", key)


def mark_work_available(keys: list[WorkerKey], *, only_if_idle: bool = False) -> None:
    """Work became available to these workers now: the progress check measures idleness from here, not from a last
    outcome long ago. ``only_if_idle``: only for workers whose queue is empty (a fill of a queue that already has
    work gives nothing new to wait for)."""
    if not keys:
        return
    client = get_redis()
    if only_if_idle:
        pipe = client.pipeline(transaction=False)
        for key in keys:
            pipe.llen(key.queue_key)
        keys = [key for key, waiting in zip(keys, pipe.execute(), strict=True) if not waiting]
    now = time.time()
    pipe = client.pipeline(transaction=False)
    for key in keys:
        pipe.set(work_since_key(key), now, ex=WORK_SINCE_TTL)
    pipe.execute()


def write_heartbeat(key: WorkerKey, *, at: float, pid: int, rss: int, consuming: bool, current: list[int],
                    inflight_target: int | None) -> None:
    client = get_redis()
    client.hset(heartbeat_key(key), mapping={
        "at": at, "pid": pid, "rss": rss, "consuming": int(consuming), "current": ",".join(map(str, current)),
        "inflight_target": "" if inflight_target is None else inflight_target,  # empty: no gate (built-in)
    })
    client.expire(heartbeat_key(key), HEARTBEAT_TTL)


@dataclass
class Live:
    """What Redis says of one worker; None where it says nothing (never beat, heartbeat expired)."""

    beat_at: float | None = None
    pid: int | None = None
    rss: int | None = None
    consuming: bool | None = None
    current: list[int] = field(default_factory=list)  # the samples it works on now
    inflight_target: int | None = None  # how many LLM requests it lets run at once (HTTP backends)
    queue: int = 0  # messages waiting in its queue
    ok: int = 0
    malformed: int = 0
    last_stored: float | None = None
    recent: list[str] = field(default_factory=list)
    workbook_report: list = field(default_factory=list)  # ok, reason, at, host as its host's agent published them
    per_minute: int = 0  # outcomes stored in the last minute, scaled from the rate buckets
    work_since: float | None = None  # when work last became available to it after it had none

    @property
    def stored(self) -> int:
        return self.ok + self.malformed

    def heartbeat_age(self, now: float) -> float | None:
        return None if self.beat_at is None else now - self.beat_at


def _number(raw: str | None, kind: type = int):
    return kind(raw) if raw not in (None, "") else None


def read_live(keys: list[WorkerKey], now: float, run_id: int | None = None) -> list[Live]:
    """Everything Redis holds of these workers, in one pipelined round trip; in the order of ``keys``. The counters
    are of the current run unless ``run_id`` names another."""
    if run_id is None:
        run_id = current_run().pk
    current = int(now // RATE_BUCKET_SECONDS)
    window = (RATE_WINDOW_BUCKETS - 1) * RATE_BUCKET_SECONDS + now % RATE_BUCKET_SECONDS
    pipe = get_redis().pipeline(transaction=False)
    for key in keys:
        pipe.hmget(heartbeat_key(key), "at", "pid", "rss", "consuming", "current", "inflight_target")
        pipe.llen(key.queue_key)
        pipe.hmget(key.progress_key(run_id), "ok", "malformed", "last_at")
        pipe.lrange(key.recent_key, 0, -1)
        pipe.hmget(key.workbook_report_key, "ok", "reason", "at", "host")
        pipe.mget([key.rate_key(current - back) for back in range(RATE_WINDOW_BUCKETS)])
        pipe.get(work_since_key(key))
    answers = iter(pipe.execute())
    found = []
    for _ in keys:
        (at, pid, rss, consuming, samples, inflight), queue = next(answers), next(answers)
        (ok, malformed, last), recent, report, buckets = next(answers), next(answers), next(answers), next(answers)
        work_since = next(answers)
        found.append(Live(
            beat_at=_number(at, float), pid=_number(pid), rss=_number(rss),
            consuming=None if consuming is None else consuming == "1",
            current=[int(part) for part in (samples or "").split(",") if part.isdigit()],
            inflight_target=_number(inflight), queue=queue, ok=int(ok or 0), malformed=int(malformed or 0),
            last_stored=_number(last, float), recent=recent, workbook_report=report,
            per_minute=round(sum(int(count or 0) for count in buckets) * 60 / window),
            work_since=_number(work_since, float)))
    return found
