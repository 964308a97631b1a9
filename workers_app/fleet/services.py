"""Every fleet operation is one function here: it does the work and writes its audit rows.

Admin actions, the ``workers`` command, the ControlAPI and beat tasks are thin adapters over these. Each one
runs inside ``audited``: the desired-state change commits with its audit rows, and any failure (a busy worker,
Redis away) leaves a ``failed`` row per worker and a failed result, for one worker or many.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager

from django.conf import settings
from django.db import close_old_connections, connections, transaction
from django.utils import timezone

from annotation_site.celery import app
from audit.actions import Action
from audit.actors import Actor, actor_name
from audit.services import audited
from workers_app.engine.counters import forget as forget_counters
from workers_app.engine.flush import delete_workbook, flush_workbook
from workers_app.engine.keys import redis_key
from workers_app.engine.live import heartbeat_key, mark_work_available, wake_agent
from workers_app.engine.queues import claim_samples, purge_queue, send_claimed, sync_checkpoints, sync_keys
from workers_app.models import Worker
from workers_app.redis_client import get_redis
from workers_app.runs.current import current_run, run_samples, takes_part

from .hosts import check_host_name, is_alive
from .results import WorkerResult
from .rows import key_of
from .selectors import status_results
from .transitions import set_observed

CONTROL_TIMEOUT = 2.0
LOCK_SECONDS = 120
ALIVE = (Worker.Observed.STARTING, Worker.Observed.RUNNING, Worker.Observed.PAUSED, Worker.Observed.STALLED)


class FleetBusy(RuntimeError):
    """Another operation on this worker holds its lock for too long."""


@contextmanager
def _held(worker: Worker) -> Iterator[None]:
    """The per-worker Redis lock, with its owner token, around one operation."""
    lock = get_redis().lock(redis_key("lock", worker.name), timeout=LOCK_SECONDS, blocking_timeout=LOCK_SECONDS)
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


def _audited_fleet(action: Action, workers: list[Worker], actor: Actor, **parameters):
    """Audit rows per worker. The state change goes in ``with entry.commit():`` inside the worker locks, so no
    transaction stays open while a lock is awaited or queues are filled (on SQLite that would hold every
    worker's writes)."""
    return audited(action, actor=actor, targets=[w.name for w in workers], parameters=parameters, atomic=False)


def _failed(workers: list[Worker], exc: Exception) -> list[WorkerResult]:
    return [WorkerResult(w.name, False, w.observed_state, f"failed: {exc}") for w in workers]


def _broadcast(command: str, workers: list[Worker]) -> set[str]:
    """One control message to the exact nodes of the live workers; the names of those that confirmed."""
    live = [w.node_name for w in workers if w.observed_state in ALIVE]
    if not live:
        return set()
    replies = app.control.broadcast(command, destination=live, reply=True, timeout=CONTROL_TIMEOUT, limit=len(live))
    return {node for reply in replies or [] for node, answer in reply.items() if "ok" in answer}


def _wait_for(worker: Worker, done: Callable[[Worker], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        worker.refresh_from_db()
        if done(worker):
            return True
        time.sleep(0.05)
    return False


def _wait_for_all(workers: list[Worker], done: Callable[[Worker], bool], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    waiting = list(workers)
    while waiting and time.monotonic() < deadline:
        time.sleep(0.05)
        fresh = Worker.objects.in_bulk([w.pk for w in waiting])
        for worker in waiting:
            worker.observed_state = fresh[worker.pk].observed_state
            worker.moving_from = fresh[worker.pk].moving_from
        waiting = [w for w in waiting if not done(w)]


def _set_desired(workers: list[Worker], desired: str, **fields) -> None:
    Worker.objects.filter(pk__in=[w.pk for w in workers]).update(desired_state=desired, **fields)
    for worker in workers:
        worker.desired_state = desired
    for host in {w.host for w in workers}:
        transaction.on_commit(lambda host=host: wake_agent(host))
    if desired == Worker.Desired.RUNNING:  # what waits in their queues is theirs to do from now on
        transaction.on_commit(lambda: mark_work_available([key_of(w) for w in workers]))


def _mark(confirmed: set[str], workers: list[Worker], state: str, reason: str, actor: Actor) -> None:
    for worker in workers:
        if worker.node_name in confirmed:
            set_observed(worker, state, reason=reason, actor=actor_name(actor))


def launch_workers(workers: list[Worker], *, actor: Actor, wait: bool = True) -> list[WorkerResult]:
    """Sync checkpoints, queue what has no outcome, and make them run (resuming the paused ones)."""
    keys = [key_of(w) for w in workers]
    try:
        with _audited_fleet(Action.LAUNCH_WORKER, workers, actor) as entry, _held_all(workers):
            run = current_run()
            total = run_samples(run).count()
            entry.target_detail = {
                str(key): {"to_queue": total * takes_part(run, key.annotator, key.domain) - counts["ok"]
                           - counts["malformed"] - counts["queued"]}
                for key, counts in zip(keys, sync_keys(keys).values(), strict=True)}
            with entry.commit():
                for worker in workers:
                    if worker.observed_state in (Worker.Observed.FATAL, Worker.Observed.BACKOFF):
                        set_observed(worker, Worker.Observed.STOPPED, reason="launched by staff",
                                     actor=actor_name(actor), quick_failures=0)
                _set_desired(workers, Worker.Desired.RUNNING, force_stop=False)
            # The agents start the processes now; the queues fill while those boot.
            claimed = claim_samples(keys, run)
            send_claimed(claimed, run)
            queued = {str(key): len(ids) for key, ids in claimed.items()}
            paused = [w for w in workers if w.observed_state == Worker.Observed.PAUSED]
            _mark(_broadcast("fleet_resume", paused), paused, Worker.Observed.RUNNING, "launched", actor)
    except Exception as exc:  # noqa: BLE001  the audit rows say it failed; callers get one result per worker
        return _failed(workers, exc)
    if wait:
        _wait_for_all(workers, lambda w: w.observed_state == Worker.Observed.RUNNING, 60)
    return [WorkerResult(w.name, not wait or w.observed_state == Worker.Observed.RUNNING, w.observed_state,
                         f"queued {queued[w.name]}") for w in workers]


def _switch(workers: list[Worker], *, actor: Actor, action: Action, desired: str, command: str, state: str,
            done: str, not_running: str) -> list[WorkerResult]:
    """Record the wish with its audit rows, tell the live nodes in one broadcast, record what they confirmed."""
    try:
        with _audited_fleet(action, workers, actor) as entry, _held_all(workers):
            with entry.commit():
                _set_desired(workers, desired)
            confirmed = _broadcast(command, workers)
            _mark(confirmed, workers, state, action.removesuffix("_worker"), actor)
    except Exception as exc:  # noqa: BLE001  see launch_workers
        return _failed(workers, exc)
    return [WorkerResult(w.name, True, w.observed_state, done if w.node_name in confirmed else not_running)
            for w in workers]


def pause_workers(workers: list[Worker], *, actor: Actor) -> list[WorkerResult]:
    """Stop consuming on each exact node (running tasks finish) and flush; they stay paused on restart."""
    return _switch(workers, actor=actor, action=Action.PAUSE_WORKER, desired=Worker.Desired.PAUSED,
                   command="fleet_pause", state=Worker.Observed.PAUSED, done="paused",
                   not_running="not running: it will start paused")


def resume_workers(workers: list[Worker], *, actor: Actor) -> list[WorkerResult]:
    return _switch(workers, actor=actor, action=Action.RESUME_WORKER, desired=Worker.Desired.RUNNING,
                   command="fleet_resume", state=Worker.Observed.RUNNING, done="consuming",
                   not_running="not running: launch it to start it")


def launch_worker(worker: Worker, *, actor: Actor, wait: bool = True) -> WorkerResult:
    return launch_workers([worker], actor=actor, wait=wait)[0]


def pause_worker(worker: Worker, *, actor: Actor) -> WorkerResult:
    return pause_workers([worker], actor=actor)[0]


def resume_worker(worker: Worker, *, actor: Actor) -> WorkerResult:
    return resume_workers([worker], actor=actor)[0]


def stop_worker(worker: Worker, *, actor: Actor, force: bool = False, wait: bool = True) -> WorkerResult:
    """Warm shutdown (the running task finishes and the workbook is flushed), or ``force``: cold, then kill."""
    with _audited_fleet(Action.STOP_WORKER, [worker], actor, force=force) as entry, _held(worker), entry.commit():
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
    with _audited_fleet(Action.RESTART_WORKER, [worker], actor, force=force) as entry, _held(worker):
        worker.refresh_from_db()
        if worker.started_at and worker.started_at > asked:
            entry.detail = {"merged": "restarted by a concurrent request"}
            return WorkerResult(worker.name, True, worker.observed_state, "restarted by a concurrent request")
        sync_checkpoints(key.annotator, key.domain)
        with entry.commit():
            if worker.desired_state == Worker.Desired.STOPPED:
                _set_desired([worker], Worker.Desired.RUNNING)
            Worker.objects.filter(pk=worker.pk).update(generation=worker.generation + 1, force_stop=force)
            transaction.on_commit(lambda: wake_agent(worker.host))
        # Still holding the lock: a concurrent request waits here and then finds the new process.
        back = not wait or _wait_for(worker, lambda w: bool(w.started_at and w.started_at > asked
                                                             and w.observed_state in ALIVE[1:]), 60)
    return WorkerResult(worker.name, back, worker.observed_state, "restarted" if back else "not back yet")


def flush_worker(worker: Worker, *, actor: Actor) -> WorkerResult:
    with _audited_fleet(Action.FLUSH_WORKER, [worker], actor) as entry:
        result = flush_workbook(key_of(worker))
        entry.detail = {"added": result.added, "rows": result.rows}
    return WorkerResult(worker.name, True, worker.observed_state, f"+{result.added}, {result.rows} rows")


def retire_worker(worker: Worker, *, actor: Actor, keep_workbook: bool = False) -> WorkerResult:
    """Before its data is deleted: stop it for good (forced), drop its queue and Redis state, and its workbook
    unless ``keep_workbook``. It is left with desired state ``stopped``."""
    if worker.observed_state in ALIVE or worker.desired_state != Worker.Desired.STOPPED:
        stopped = stop_worker(worker, actor=actor, force=True)
        if not stopped.ok:
            return stopped
    key = key_of(worker)
    with _audited_fleet(Action.RETIRE_WORKER, [worker], actor, keep_workbook=keep_workbook) as entry, \
            _held(worker):
        entry.detail = {"purged": purge_queue(key)}
        forget_counters(key)  # its outcomes are about to go; the next rebuild counts afresh
        get_redis().delete(heartbeat_key(key))
        if not keep_workbook:
            delete_workbook(key)
        with entry.commit():
            _set_desired([worker], Worker.Desired.STOPPED)
    return WorkerResult(worker.name, True, worker.observed_state, f"retired, {entry.detail['purged']} purged",
                        detail=entry.detail)


def _settled(worker: Worker) -> bool:
    """Moved, and in the state staff want on its new host."""
    if worker.moving_from:
        return False
    wanted = {Worker.Desired.RUNNING: (Worker.Observed.RUNNING,), Worker.Desired.PAUSED: (Worker.Observed.PAUSED,)}
    return worker.observed_state in wanted.get(worker.desired_state, (Worker.Observed.STOPPED,
                                                                      Worker.Observed.EXITED))


def _place(worker: Worker, to_host: str) -> str:
    """Record the new placement; the agents do the rest. Returns what happens next, for the result."""
    origin = worker.moving_from or worker.host  # where its process may still run
    if worker.host == to_host:
        return f"already on {to_host}"
    moving_from = "" if origin == to_host else origin  # moved back before the old host let go: nothing to do
    Worker.objects.filter(pk=worker.pk).update(host=to_host, moving_from=moving_from)
    worker.host, worker.moving_from = to_host, moving_from
    for host in {origin, to_host}:
        transaction.on_commit(lambda host=host: wake_agent(host))
    if not moving_from:
        return f"stays on {to_host}"
    lost = "" if is_alive(origin) else f" (host {origin} is lost: {to_host} takes it over)"
    return f"moving from {origin} to {to_host}{lost}"


def move_workers(workers: list[Worker], *, to_host: str, actor: Actor, wait: bool = True) -> list[WorkerResult]:
    """Place the workers on ``to_host``. The old host's agent stops each process (its running task finishes),
    drops its local workbook and hands the worker over; the new host's agent starts it and rebuilds the workbook
    from the store. From a lost host the new one takes over at once, putting back what the dead process held.
    The store's one row per (sample, annotator, domain) keeps every annotation exactly once throughout."""
    to_host = check_host_name(to_host)  # InvalidHost: a bad name changes nothing
    try:
        with _audited_fleet(Action.MOVE_WORKER, workers, actor, to_host=to_host) as entry, _held_all(workers):
            entry.target_detail = {w.name: {"from": w.host} for w in workers}
            with entry.commit():
                plans = {w.name: _place(w, to_host) for w in workers}
    except Exception as exc:  # noqa: BLE001  see launch_workers
        return _failed(workers, exc)
    target_alive = is_alive(to_host)
    if wait and target_alive:
        _wait_for_all(workers, _settled, settings.FLEET_STOP_GRACE_SECONDS + 60)
    note = "" if target_alive else f"; no agent runs on {to_host}: it starts when one does"
    return [WorkerResult(w.name, not wait or not target_alive or _settled(w), w.observed_state, plans[w.name] + note)
            for w in workers]


def _guarded(operation: Callable[..., WorkerResult], worker: Worker, kwargs: dict) -> WorkerResult:
    try:
        return operation(worker, **kwargs)
    except Exception as exc:  # noqa: BLE001  one worker's failure is its row in the result, not the batch's end
        return _failed([worker], exc)[0]


def _in_own_connection(operation: Callable[..., WorkerResult], worker: Worker, kwargs: dict) -> WorkerResult:
    try:
        return _guarded(operation, worker, kwargs)
    finally:
        close_old_connections()
        connections.close_all()


def run_bulk(operation: Callable[..., WorkerResult], workers: list[Worker], **kwargs) -> list[WorkerResult]:
    """The same per-worker operation on many workers at once; one result per worker, in the order given."""
    if len(workers) <= 1:
        return [_guarded(operation, worker, kwargs) for worker in workers]
    with ThreadPoolExecutor(max_workers=min(32, len(workers))) as pool:
        return list(pool.map(lambda w: _in_own_connection(operation, w, kwargs), workers))


def _each(operation: Callable[..., WorkerResult]) -> Callable[..., list[WorkerResult]]:
    return lambda workers, **kwargs: run_bulk(operation, workers, **kwargs)


# Every operation in its bulk form: workers in, one result per worker out.
OPERATIONS: dict[str, Callable[..., list[WorkerResult]]] = {
    "launch": launch_workers, "pause": pause_workers, "resume": resume_workers, "stop": _each(stop_worker),
    "restart": _each(restart_worker), "flush": _each(flush_worker), "move": move_workers,
    # The one read among them, so that commands and the ControlAPI show status in the same shape.
    "status": lambda workers, **_: status_results(workers),
}
