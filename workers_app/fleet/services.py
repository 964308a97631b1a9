"""Every fleet operation is one function here: it does the work and writes its audit row.

Admin actions, the ``workers`` command, the ControlAPI and beat tasks are thin adapters over these.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from dataclasses import asdict, dataclass

from django.conf import settings
from django.db import close_old_connections, connections, transaction
from django.utils import timezone

from admin_ops.audit import Actor, actor_name, audited, record
from annotation_site.celery import app
from workers_app.engine.flush import flush_workbook
from workers_app.engine.queues import populate_keys, progress, queue_length, sync_checkpoints, sync_keys
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


@contextmanager
def _held_all(workers: list[Worker]) -> Iterator[None]:
    """Every worker's lock, taken in name order so that two bulk operations cannot deadlock."""
    with ExitStack() as stack:
        for worker in sorted(workers, key=lambda w: w.name):
            stack.enter_context(_held(worker))
        yield


def _broadcast(command: str, workers: list[Worker]) -> set[str]:
    """One control message to the exact nodes of the live workers; the names of those that confirmed."""
    live = [w.node_name for w in workers if w.observed_state in ALIVE]
    if not live:
        return set()
    replies = app.control.broadcast(command, destination=live, reply=True, timeout=CONTROL_TIMEOUT, limit=len(live))
    return {node for reply in replies or [] for node, answer in reply.items() if "ok" in answer}


def _record_each(action: str, workers: list[Worker], actor: Actor, started: float, detail) -> None:
    duration = int((time.monotonic() - started) * 1000)
    for worker in workers:
        record(f"{action}_worker", actor=actor, target=worker.name, ok=True, detail=detail(worker),
               duration_ms=duration)


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


def _set_desired(workers: list[Worker], desired: str, **fields) -> None:
    Worker.objects.filter(pk__in=[w.pk for w in workers]).update(desired_state=desired, **fields)
    for worker in workers:
        worker.desired_state = desired
    for host in {w.host for w in workers}:
        transaction.on_commit(lambda host=host: wake_agent(host))


def launch_workers(workers: list[Worker], *, actor: Actor, wait: bool = True) -> list[WorkerResult]:
    """Sync checkpoints, queue what has no outcome, and make them run (resuming the paused ones)."""
    started = time.monotonic()
    keys = [key_of(w) for w in workers]
    with _held_all(workers):
        sync_keys(keys)
        queued = populate_keys(keys)
        with transaction.atomic():
            for worker in workers:
                if worker.observed_state in (Worker.Observed.FATAL, Worker.Observed.BACKOFF):
                    set_observed(worker, Worker.Observed.STOPPED, reason="launched by staff",
                                 actor=actor_name(actor), quick_failures=0)
            _set_desired(workers, Worker.Desired.RUNNING, force_stop=False)
            _record_each("launch", workers, actor, started, lambda w: {"queued": queued[w.name]})
        paused = [w for w in workers if w.observed_state == Worker.Observed.PAUSED]
        _mark(_broadcast("fleet_resume", paused), paused, Worker.Observed.RUNNING, "launched", actor)
    if wait:
        _wait_for_all(workers, lambda w: w.observed_state == Worker.Observed.RUNNING, 60)
    return [WorkerResult(w.name, not wait or w.observed_state == Worker.Observed.RUNNING, w.observed_state,
                         f"queued {queued[w.name]}") for w in workers]


def _switch(workers: list[Worker], *, actor: Actor, verb: str, desired: str, command: str, state: str,
            done: str, not_running: str) -> list[WorkerResult]:
    """Record the wish, tell the live nodes in one broadcast, record what they confirmed."""
    started = time.monotonic()
    with _held_all(workers):
        with transaction.atomic():
            _set_desired(workers, desired)
        confirmed = _broadcast(command, workers)
        with transaction.atomic():
            _mark(confirmed, workers, state, verb, actor)
            _record_each(verb, workers, actor, started, lambda w: {"confirmed": w.node_name in confirmed})
    return [WorkerResult(w.name, True, w.observed_state, done if w.node_name in confirmed else not_running)
            for w in workers]


def pause_workers(workers: list[Worker], *, actor: Actor) -> list[WorkerResult]:
    """Stop consuming on each exact node (running tasks finish) and flush; they stay paused on restart."""
    return _switch(workers, actor=actor, verb="pause", desired=Worker.Desired.PAUSED, command="fleet_pause",
                   state=Worker.Observed.PAUSED, done="paused", not_running="not running: it will start paused")


def resume_workers(workers: list[Worker], *, actor: Actor) -> list[WorkerResult]:
    return _switch(workers, actor=actor, verb="resume", desired=Worker.Desired.RUNNING, command="fleet_resume",
                   state=Worker.Observed.RUNNING, done="consuming", not_running="not running: launch it to start it")


def _mark(confirmed: set[str], workers: list[Worker], state: str, reason: str, actor: Actor) -> None:
    for worker in workers:
        if worker.node_name in confirmed:
            set_observed(worker, state, reason=reason, actor=actor_name(actor))


def _wait_for_all(workers: list[Worker], done: Callable[[Worker], bool], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    waiting = list(workers)
    while waiting and time.monotonic() < deadline:
        time.sleep(0.05)
        fresh = Worker.objects.in_bulk([w.pk for w in waiting])
        for worker in waiting:
            worker.observed_state = fresh[worker.pk].observed_state
        waiting = [w for w in waiting if not done(w)]


def launch_worker(worker: Worker, *, actor: Actor, wait: bool = True) -> WorkerResult:
    return launch_workers([worker], actor=actor, wait=wait)[0]


def pause_worker(worker: Worker, *, actor: Actor) -> WorkerResult:
    return pause_workers([worker], actor=actor)[0]


def resume_worker(worker: Worker, *, actor: Actor) -> WorkerResult:
    return resume_workers([worker], actor=actor)[0]


def stop_worker(worker: Worker, *, actor: Actor, force: bool = False, wait: bool = True) -> WorkerResult:
    """Warm shutdown (the running task finishes and the workbook is flushed), or ``force``: cold, then kill."""
    with _held(worker), _operation("stop", worker, actor, force=force):
        _set_desired([worker], Worker.Desired.STOPPED, force_stop=force)
    grace = settings.FLEET_FORCE_GRACE_SECONDS if force else settings.FLEET_STOP_GRACE_SECONDS
    stopped = not wait or _wait_for(worker, lambda w: w.observed_state not in (*ALIVE, Worker.Observed.STOPPING),
                                    grace + 10)
    return WorkerResult(worker.name, stopped, worker.observed_state, "stopped" if stopped else "still stopping")


def restart_worker(worker: Worker, *, actor: Actor, wait: bool = True, force: bool = False) -> WorkerResult:
    """Stop and start again with a checkpoint sync; concurrent requests cause one restart.

    ``force`` kills the old process at once: for a stalled one that no longer handles signals.
    """
    asked = timezone.now()
    key = key_of(worker)
    with _held(worker):
        worker.refresh_from_db()
        if worker.started_at and worker.started_at > asked:
            return WorkerResult(worker.name, True, worker.observed_state, "restarted by a concurrent request")
        with _operation("restart", worker, actor):
            sync_checkpoints(key.annotator, key.domain)
            if worker.desired_state == Worker.Desired.STOPPED:
                _set_desired([worker], Worker.Desired.RUNNING)
            Worker.objects.filter(pk=worker.pk).update(generation=worker.generation + 1, force_stop=force)
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
    """The same per-worker operation on many workers at once; one result per worker, in the order given."""
    if not workers:
        return []
    if len(workers) == 1:
        return [operation(workers[0], **kwargs)]
    with ThreadPoolExecutor(max_workers=min(32, len(workers))) as pool:
        return list(pool.map(lambda w: _in_own_connection(operation, w, kwargs), workers))


def _each(operation: Callable[..., WorkerResult]) -> Callable[..., list[WorkerResult]]:
    return lambda workers, **kwargs: run_bulk(operation, workers, **kwargs)


# Every operation in its bulk form: workers in, one result per worker out.
OPERATIONS: dict[str, Callable[..., list[WorkerResult]]] = {
    "launch": launch_workers, "pause": pause_workers, "resume": resume_workers, "stop": _each(stop_worker),
    "restart": _each(restart_worker), "flush": _each(flush_worker), "status": _each(status_result),
}
