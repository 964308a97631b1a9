"""The five health checks of a worker, evaluated from one snapshot of the whole fleet.

The snapshot is read in one pipelined Redis round trip plus three database queries, whatever the fleet's
size: a sweep over 30 workers must cost milliseconds, not a control round trip per worker. A workbook is checked
on the host that holds it (see engine.workbook_check).
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field

from django.conf import settings

from workers_app.engine.live import Live, read_live
from workers_app.engine.workbook_check import check_workbook, read_report
from workers_app.fleet.rows import key_of
from workers_app.models import Outcome, Worker

CHECKS = ("heartbeat", "progress", "error_rate", "memory", "workbook")


@dataclass
class Check:
    name: str
    ok: bool
    reason: str


@dataclass
class WorkerHealth:
    worker: Worker
    checks: list[Check] = field(default_factory=list)
    heartbeat_age: float | None = None
    rss: int | None = None
    queue: int = 0
    error_rate: float = 0.0
    stored: int = 0
    malformed: int = 0
    inflight_target: int | None = None
    per_minute: int = 0  # outcomes stored in the last minute, scaled from the rate buckets
    live: Live = field(default_factory=Live)  # everything Redis said of it, for readers that show more

    @property
    def healthy(self) -> bool:
        return all(c.ok for c in self.checks)

    def failing(self, name: str) -> bool:
        return any(c.name == name and not c.ok for c in self.checks)

    def as_dict(self) -> dict:
        return {"worker": self.worker.name, "healthy": self.healthy, "observed": self.worker.observed_state,
                "heartbeat_age": self.heartbeat_age, "rss": self.rss, "queue": self.queue,
                "error_rate": round(self.error_rate, 3), "checks": [asdict(c) for c in self.checks]}


def _heartbeat(worker: Worker, live: Live, now: float) -> Check:
    if worker.desired_state == Worker.Desired.STOPPED:
        return Check("heartbeat", True, "stopped on purpose")
    if live.beat_at is None:
        return Check("heartbeat", False, "no heartbeat")
    age = now - live.beat_at
    ok = age <= settings.HEALTH_HEARTBEAT_MAX_AGE
    return Check("heartbeat", ok, f"last beat {age:.0f} s ago" + ("" if ok else
                 f" (limit {settings.HEALTH_HEARTBEAT_MAX_AGE} s)"))


def _progress(worker: Worker, live: Live, now: float) -> Check:
    # Its work: what waits in its queue and what its threads hold (its heartbeat names the samples it works on; an
    # LLM worker may take many messages at once, leaving its queue empty while it answers none of them).
    work = live.queue + len(live.current)
    if worker.desired_state != Worker.Desired.RUNNING or work == 0:
        return Check("progress", True, "nothing to do" if work == 0 else "not meant to run")
    # Idle since the later of its process start, its last outcome and the moment it was last given work after it had
    # none (a launch, resume, run switch, import or requeue): a fleet that sat idle and is then given work is not
    # stuck before its first answer could come back.
    marks = [worker.started_at.timestamp() if worker.started_at else now, live.last_stored, live.work_since]
    since = max(mark for mark in marks if mark is not None)
    idle = now - since
    ok = idle <= settings.HEALTH_STUCK_SECONDS
    return Check("progress", ok, f"{live.queue} queued, {len(live.current)} in hand, last outcome or new work "
                 f"{idle:.0f} s ago" + ("" if ok else " (stuck)"))


def _error_rate(recent: list[str]) -> Check:
    total, bad = len(recent), sum(1 for status in recent if status != Outcome.Status.OK)
    rate = bad / total if total else 0.0
    ok = rate < settings.HEALTH_ERROR_RATE
    return Check("error_rate", ok, f"{bad} of the last {total} outcomes malformed ({rate:.0%})")


def _memory(live: Live) -> Check:
    if live.rss is None:
        return Check("memory", True, "no reading")
    ok = live.rss < settings.HEALTH_MAX_RSS_MB * 2**20
    return Check("memory", ok, f"RSS {live.rss / 2**20:.0f} MB" + ("" if ok else
                 f" (limit {settings.HEALTH_MAX_RSS_MB} MB)"))


def _workbook(worker: Worker, live: Live, now: float, check_here: bool) -> Check:
    """Checked here if the file is on this host (and ``check_here``), else as the worker's host last reported it."""
    if check_here and worker.host == settings.FLEET_HOST:
        return Check("workbook", *check_workbook(key_of(worker), live.stored))
    return Check("workbook", *read_report(live.workbook_report, worker.host, now))


def evaluate(workers: list[Worker], *, with_workbooks: bool = True, read_files: bool = True) -> list[WorkerHealth]:
    """``read_files=False`` takes every workbook check from the agents' reports: a page refreshed every second
    must not read thirty workbooks."""
    now = time.time()
    reports = []
    for worker, state in zip(workers, read_live([key_of(w) for w in workers], now), strict=True):
        error_rate = _error_rate(state.recent)
        health = WorkerHealth(worker, heartbeat_age=None if state.beat_at is None else round(now - state.beat_at, 1),
                              rss=state.rss, queue=state.queue, stored=state.stored, malformed=state.malformed,
                              inflight_target=state.inflight_target, per_minute=state.per_minute,
                              error_rate=sum(s != Outcome.Status.OK for s in state.recent) / max(len(state.recent), 1),
                              live=state)
        health.checks = [_heartbeat(worker, state, now), _progress(worker, state, now), error_rate, _memory(state)]
        if with_workbooks:
            health.checks.append(_workbook(worker, state, now, read_files))
        reports.append(health)
    return reports
