"""The health sweep beat runs every few seconds: evaluate every worker, restart the stalled and the stuck (at most
AUTO_RESTARTS_PER_HOUR times per worker per rolling hour), mirror live numbers into the Worker rows, alert.

Safe to run twice at once: a sweep holds a Redis lock and a second one returns at once. The restart count
comes from WorkerEvent rows, so restarting beat or the monitor does not reset the throttle.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from workers_app.engine.counters import repair as repair_counters
from workers_app.engine.keys import redis_key
from workers_app.fleet.hosts import ALIVE, LOST, host_states, least_loaded
from workers_app.fleet.rows import ensure_worker_rows, key_of
from workers_app.fleet.services import move_workers, restart_worker
from workers_app.fleet.transitions import set_observed
from workers_app.models import Annotator, Worker, WorkerEvent
from workers_app.redis_client import get_redis
from workers_app.runs.current import current_run

from .alerts import Incident, sync_alerts
from .budgets import budget_sweep
from .checks import WorkerHealth, evaluate
from .gold import gold_sweep
from .review_alerts import review_sweep

log = logging.getLogger(__name__)
ACTOR = "system:monitor"
COUNTERS_EVERY_SECONDS = 60
AUTO_RESTART = "auto-restart"
SWEEP_KINDS = {"stalled", "stuck", "fatal", "throttled", "error_rate", "backend", "structured", "integrity",
               "host_lost"}
_PROCESS_UP = (Worker.Observed.RUNNING, Worker.Observed.PAUSED)


@dataclass
class SweepReport:
    skipped: bool = False
    seconds: float = 0.0
    health: list[WorkerHealth] = field(default_factory=list)
    restarted: list[str] = field(default_factory=list)
    throttled: list[str] = field(default_factory=list)
    lost_hosts: list[str] = field(default_factory=list)
    failed_over: list[str] = field(default_factory=list)
    repaired_counters: list[str] = field(default_factory=list)


def auto_restarts_in_last_hour(worker: Worker) -> int:
    since = timezone.now() - timedelta(hours=1)
    return WorkerEvent.objects.filter(worker=worker, actor=ACTOR, reason__startswith=AUTO_RESTART,
                                      at__gte=since).count()


def _needs_restart(health: WorkerHealth) -> str:
    worker = health.worker
    if worker.observed_state not in _PROCESS_UP:
        return ""  # starting, stopping, or already being restarted: not yet the process to judge
    if health.failing("heartbeat"):
        return "stalled: " + next(c.reason for c in health.checks if c.name == "heartbeat")
    if health.failing("progress"):
        return "stuck: " + next(c.reason for c in health.checks if c.name == "progress")
    return ""


def _restart_or_throttle(health: WorkerHealth, why: str, report: SweepReport) -> None:
    worker = health.worker
    if auto_restarts_in_last_hour(worker) >= settings.AUTO_RESTARTS_PER_HOUR:
        if set_observed(worker, Worker.Observed.STALLED, reason=f"throttled: {why}", actor=ACTOR):
            report.throttled.append(worker.name)
        return
    if set_observed(worker, Worker.Observed.STALLED, reason=f"{AUTO_RESTART}: {why}", actor=ACTOR):
        restart_worker(worker, actor=ACTOR, wait=False, force=True)
        report.restarted.append(worker.name)


def _host_incidents(workers: list[Worker], lost: list[str]) -> list[Incident]:
    found = []
    for host in lost:
        names = [w.name for w in workers if w.host == host and w.desired_state != Worker.Desired.STOPPED]
        if names:
            found.append(Incident(f"host_lost:{host}", "host_lost", f"host {host} is lost: its agent has been "
                                  f"silent for over {settings.FLEET_HOST_LOST_SECONDS} s; {len(names)} worker(s) "
                                  f"are not running there ({', '.join(names)}). Move them to a live host "
                                  f"(workers move --from {host} --to HOST)."))
    return found


def _fail_over(workers: list[Worker], lost: list[str], alive: set[str], report: SweepReport) -> None:
    """Opt-in (FLEET_AUTO_FAILOVER): a lost host's workers go to the live host that runs the fewest."""
    for host in lost:
        stranded = [w for w in workers if w.host == host and w.desired_state != Worker.Desired.STOPPED]
        target = least_loaded(alive)
        if stranded and target:
            results = move_workers(stranded, to_host=target, actor=ACTOR, wait=False)
            report.failed_over += [r.worker for r in results if r.ok]


def _incidents(reports: list[WorkerHealth]) -> list[Incident]:
    found = []
    for health in reports:
        worker = health.worker
        stalled = worker.observed_state == Worker.Observed.STALLED
        last = (worker.events.order_by("-at").values_list("reason", flat=True).first() or "") if stalled else ""
        if stalled and last.startswith("throttled"):
            found.append(Incident(f"throttled:{worker.name}", "throttled", f"{worker.name} {last}; not restarted "
                                  f"({settings.AUTO_RESTARTS_PER_HOUR} automatic restarts in the last hour)", worker))
        elif health.failing("heartbeat") and worker.desired_state != Worker.Desired.STOPPED:
            reason = last or next(c.reason for c in health.checks if c.name == "heartbeat")
            found.append(Incident(f"stalled:{worker.name}", "stalled", f"{worker.name}: {reason}", worker))
        if health.failing("progress"):
            found.append(Incident(f"stuck:{worker.name}", "stuck", f"{worker.name} finishes nothing with work "
                                  "queued", worker))
        if worker.observed_state == Worker.Observed.FATAL:
            found.append(Incident(f"fatal:{worker.name}", "fatal", f"{worker.name} is fatal: {worker.last_error}",
                                  worker))
        if health.error_rate > settings.HEALTH_ALERT_ERROR_RATE:
            found.append(Incident(f"error_rate:{worker.name}", "error_rate", f"{worker.name}: "
                                  f"{health.error_rate:.0%} of its recent outcomes are malformed", worker))
        if health.failing("workbook"):
            reason = next(c.reason for c in health.checks if c.name == "workbook")
            found.append(Incident(f"integrity:{worker.name}", "integrity", f"{worker.name} workbook: {reason}",
                                  worker))
    for number, error in Annotator.objects.exclude(backend_error="").values_list("number", "backend_error"):
        found.append(Incident(f"backend:{number}", "backend", f"annotator {number} backend failed: {error}"))
    for number, refused in Annotator.objects.exclude(structured_refused="").values_list("number",
                                                                                         "structured_refused"):
        found.append(Incident(f"structured:{number}", "structured",
                              f"annotator {number} answers in free text (the fallback staff allowed): {refused}"))
    return found


_MIRROR = f"UPDATE {Worker._meta.db_table} SET last_heartbeat = %s, memory_rss = %s WHERE id = %s"


def _mirror_live(reports: list[WorkerHealth]) -> None:
    """Heartbeat time and memory into the Worker rows: one executemany, not an ORM CASE per row."""
    now = time.time()
    adapt = connection.ops.adapt_datetimefield_value
    rows = [(None if h.heartbeat_age is None else adapt(datetime.fromtimestamp(now - h.heartbeat_age, tz=UTC)),
             h.rss, h.worker.pk) for h in reports]
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.executemany(_MIRROR, rows)


def _repair_counters(workers: list[Worker]) -> list[str]:
    """Once a minute: the current run's progress counters against the store, set right where they differ, whatever
    made them differ (engine.counters)."""
    if not get_redis().set(redis_key("counters-checked"), 1, nx=True, ex=COUNTERS_EVERY_SECONDS):
        return []
    repaired = [str(key) for key in repair_counters([key_of(w) for w in workers], current_run())]
    if repaired:
        log.warning("progress counters differed from the store and were rebuilt: %s", ", ".join(repaired))
    return repaired


def health_sweep() -> SweepReport:
    lock = get_redis().lock(redis_key("health-sweep"), timeout=120, blocking=False)
    if not lock.acquire():
        return SweepReport(skipped=True)
    started = time.perf_counter()
    try:
        ensure_worker_rows()
        workers = list(Worker.objects.select_related("annotator", "domain"))
        states = host_states()
        report = SweepReport(health=evaluate(workers), lost_hosts=[h for h, s in states.items() if s == LOST])
        _mirror_live(report.health)
        for health in report.health:
            why = _needs_restart(health)
            # A restart is the lost agent's to do: nothing would carry it out; the host's alert says what to do.
            if why and states.get(health.worker.host) != LOST:
                _restart_or_throttle(health, why, report)
        if settings.FLEET_AUTO_FAILOVER:
            _fail_over(workers, report.lost_hosts, {h for h, s in states.items() if s == ALIVE}, report)
        report.repaired_counters = _repair_counters(workers)
        sync_alerts(_incidents(report.health) + _host_incidents(workers, report.lost_hosts), scope=SWEEP_KINDS)
        review_sweep()
        budget_sweep()
        gold_sweep()
        report.seconds = time.perf_counter() - started
        return report
    finally:
        lock.release()
