"""Every fleet operation is one function here: it does the work and writes its audit row.

Admin actions, the ``workers`` command, the ControlAPI and beat tasks are thin adapters over these.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import asdict, dataclass

from django.conf import settings
from django.db import close_old_connections, connections, transaction
from django.utils import timezone

from admin_ops.audit import Actor, actor_name, audited
from annotation_site.celery import app
from workers_app.engine.flush import flush_workbook
from workers_app.engine.queues import populate_queues, progress, queue_length, sync_checkpoints
from workers_app.models import Worker
from workers_app.redis_client import get_redis

from .agent import wake_agent
from .rows import key_of
from .transitions import set_observed
from .worker_side import heartbeat_key

CONTROL_TIMEOUT = 2.0
LOCK_SECONDS = 120
ALIVE = (Worker.Observed.STARTING, Worker.Observed.RUNNING, Worker.Observed.PAUSED, Worker.Observed.STALLED)


@dataclass
class WorkerResult:
    worker: str
    ok: bool
    state: str
    message: str

    def as_dict(self) -> dict:
        return asdict(self)


class FleetBusy(RuntimeError):
    """Another operation on this worker holds its lock for too long."""


@contextmanager
def _held(worker: Worker) -> Iterator[None]:
    """The per-worker Redis lock, with its owner token, around one operation."""
    lock = get_redis().lock(f"annot:lock:{worker.name}", timeout=LOCK_SECONDS, blocking_timeout=LOCK_SECONDS)
    if not lock.acquire():
        raise FleetBusy(f"{worker.name} is busy with another operation")
    try:
        yield
    finally:
        lock.release()


def _operation(name: str, worker: Worker, actor: Actor, **parameters):
    return audited(f"{name}_worker", actor=actor, target=worker.name, parameters=parameters)


def _wait_for(worker: Worker, done: Callable[[Worker], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        worker.refresh_from_db()
        if done(worker):
            return True
        time.sleep(0.05)
    return False


def _control(command: str, worker: Worker) -> bool:
    """Send add/cancel_consumer to that exact node; True when it confirmed."""
    method = getattr(app.control, command)
    replies = method(key_of(worker).queue, destination=[worker.node_name], reply=True, timeout=CONTROL_TIMEOUT)
    return any(worker.node_name in reply for reply in replies or [])


def _set_desired(worker: Worker, desired: str, **fields) -> None:
    Worker.objects.filter(pk=worker.pk).update(desired_state=desired, **fields)
    worker.desired_state = desired
    host = worker.host
    transaction.on_commit(lambda: wake_agent(host))


def launch_worker(worker: Worker, *, actor: Actor, wait: bool = True) -> WorkerResult:
    """Sync its checkpoints, queue what has no outcome, and make it run (resuming it if it was paused)."""
    key = key_of(worker)
    with _held(worker), _operation("launch", worker, actor) as entry:
        sync_checkpoints(key.annotator, key.domain)
        queued = populate_queues(key.annotator, key.domain)[str(key)]
        if worker.observed_state in (Worker.Observed.FATAL, Worker.Observed.BACKOFF):
            set_observed(worker, Worker.Observed.STOPPED, reason="launched by staff", actor=actor_name(actor),
                         quick_failures=0)
        _set_desired(worker, Worker.Desired.RUNNING, force_stop=False)
        entry.detail = {"queued": queued}
    if worker.observed_state == Worker.Observed.PAUSED and _control("add_consumer", worker):
        set_observed(worker, Worker.Observed.RUNNING, reason="launched", actor=actor_name(actor))
    running = not wait or _wait_for(worker, lambda w: w.observed_state == Worker.Observed.RUNNING, 30)
    return WorkerResult(worker.name, running, worker.observed_state, f"queued {queued}" if running else
                        f"queued {queued}; not running yet ({worker.observed_state})")


def pause_worker(worker: Worker, *, actor: Actor) -> WorkerResult:
    """Stop consuming on that node (the running task finishes), flush its workbook; stays paused on restart."""
    with _held(worker), _operation("pause", worker, actor) as entry:
        _set_desired(worker, Worker.Desired.PAUSED)
        confirmed = worker.observed_state in ALIVE and _control("cancel_consumer", worker)
        flushed = flush_workbook(key_of(worker))
        if confirmed:
            set_observed(worker, Worker.Observed.PAUSED, reason="paused", actor=actor_name(actor))
        entry.detail = {"confirmed": confirmed, "workbook_rows": flushed.rows}
    message = "paused" if confirmed else "not running: it will start paused"
    return WorkerResult(worker.name, True, worker.observed_state, message)


def resume_worker(worker: Worker, *, actor: Actor) -> WorkerResult:
    with _held(worker), _operation("resume", worker, actor) as entry:
        _set_desired(worker, Worker.Desired.RUNNING)
        confirmed = worker.observed_state in ALIVE and _control("add_consumer", worker)
        if confirmed:
            set_observed(worker, Worker.Observed.RUNNING, reason="resumed", actor=actor_name(actor))
        entry.detail = {"confirmed": confirmed}
    return WorkerResult(worker.name, True, worker.observed_state,
                        "consuming" if confirmed else "not running: launch it to start it")


def stop_worker(worker: Worker, *, actor: Actor, force: bool = False, wait: bool = True) -> WorkerResult:
    """Warm shutdown (the running task finishes and the workbook is flushed), or ``force``: cold, then kill."""
    with _held(worker), _operation("stop", worker, actor, force=force):
        _set_desired(worker, Worker.Desired.STOPPED, force_stop=force)
    grace = settings.FLEET_FORCE_GRACE_SECONDS if force else settings.FLEET_STOP_GRACE_SECONDS
    stopped = not wait or _wait_for(worker, lambda w: w.observed_state not in (*ALIVE, Worker.Observed.STOPPING),
                                    grace + 10)
    return WorkerResult(worker.name, stopped, worker.observed_state, "stopped" if stopped else "still stopping")


def restart_worker(worker: Worker, *, actor: Actor, wait: bool = True) -> WorkerResult:
    """Stop and start again with a checkpoint sync; concurrent requests cause one restart."""
    asked = timezone.now()
    key = key_of(worker)
    with _held(worker):
        worker.refresh_from_db()
        if worker.started_at and worker.started_at > asked:
            return WorkerResult(worker.name, True, worker.observed_state, "restarted by a concurrent request")
        with _operation("restart", worker, actor):
            sync_checkpoints(key.annotator, key.domain)
            if worker.desired_state == Worker.Desired.STOPPED:
                _set_desired(worker, Worker.Desired.RUNNING)
            Worker.objects.filter(pk=worker.pk).update(generation=worker.generation + 1)
            transaction.on_commit(lambda: wake_agent(worker.host))
        back = not wait or _wait_for(worker, lambda w: bool(w.started_at and w.started_at > asked
                                                             and w.observed_state in ALIVE[1:]), 60)
    return WorkerResult(worker.name, back, worker.observed_state, "restarted" if back else "not back yet")


def flush_worker(worker: Worker, *, actor: Actor) -> WorkerResult:
    with _operation("flush", worker, actor) as entry:
        result = flush_workbook(key_of(worker))
        entry.detail = {"added": result.added, "rows": result.rows}
    return WorkerResult(worker.name, True, worker.observed_state, f"+{result.added}, {result.rows} rows")


def worker_status(worker: Worker) -> dict:
    key = key_of(worker)
    beat = get_redis().hgetall(heartbeat_key(key))
    counts = progress(key)
    return {
        "worker": worker.name, "node": worker.node_name, "desired": worker.desired_state,
        "observed": worker.observed_state, "pid": worker.pid, "restarts": worker.restarts,
        "heartbeat_age": round(time.time() - float(beat["at"]), 1) if beat else None,
        "consuming": bool(int(beat.get("consuming", 0))) if beat else False,
        "rss_mb": round(int(beat["rss"]) / 2**20, 1) if beat else None,
        "ok": counts["ok"], "malformed": counts["malformed"], "queue": queue_length(key),
        "last_error": worker.last_error,
    }


def status_result(worker: Worker, *, actor: Actor = None) -> WorkerResult:
    status = worker_status(worker)
    return WorkerResult(worker.name, True, worker.observed_state,
                        f"ok {status['ok']}, malformed {status['malformed']}, queue {status['queue']}")


def active_tasks(worker: Worker) -> list[dict]:
    replies = app.control.inspect(destination=[worker.node_name], timeout=CONTROL_TIMEOUT).active() or {}
    return replies.get(worker.node_name, [])


def queue_stats(workers: list[Worker]) -> dict[str, dict[str, int]]:
    client = get_redis()
    pipe = client.pipeline(transaction=False)
    for worker in workers:
        key = key_of(worker)
        pipe.llen(key.queue)
        pipe.scard(key.queued_key)
    answers = pipe.execute()
    return {w.name: {"messages": answers[2 * i], "samples_queued": answers[2 * i + 1]}
            for i, w in enumerate(workers)}


def _in_own_connection(operation: Callable[..., WorkerResult], worker: Worker, kwargs: dict) -> WorkerResult:
    try:
        return operation(worker, **kwargs)
    except Exception as exc:  # noqa: BLE001  one worker's failure is its row in the result, not the batch's end
        return WorkerResult(worker.name, False, worker.observed_state, f"failed: {exc}")
    finally:
        close_old_connections()
        connections.close_all()


def run_bulk(operation: Callable[..., WorkerResult], workers: list[Worker], **kwargs) -> list[WorkerResult]:
    """The same operation on many workers at once; one result per worker, in the order given."""
    if len(workers) == 1:
        return [operation(workers[0], **kwargs)]
    with ThreadPoolExecutor(max_workers=min(32, len(workers))) as pool:
        return list(pool.map(lambda w: _in_own_connection(operation, w, kwargs), workers))


OPERATIONS: dict[str, Callable[..., WorkerResult]] = {
    "launch": launch_worker, "pause": pause_worker, "resume": resume_worker, "stop": stop_worker,
    "restart": restart_worker, "flush": flush_worker, "status": status_result,
}
