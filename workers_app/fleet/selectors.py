"""Reads of the fleet that pages, commands and the API share: nothing here changes state."""

from __future__ import annotations

import time

from workers_app.engine.live import read_live
from workers_app.models import Run, Worker
from workers_app.redis_client import get_redis
from workers_app.runs.current import current_run

from .results import WorkerResult
from .rows import key_of

KNOWN_RUNS_SHOWN = 20


class UnknownRun(LookupError):
    """A run name that names no run; the message lists the runs there are."""


def chosen_run(name: str | None) -> Run:
    """The run called ``name``, or the current run when no name is given: every read of outcomes is for one run."""
    if not name:
        return current_run()
    run = Run.objects.filter(name=name).first()
    if run is None:
        known = ", ".join(Run.objects.order_by("name").values_list("name", flat=True)[:KNOWN_RUNS_SHOWN])
        raise UnknownRun(f"no run named {name[:50]!r}; the runs are {known or 'none'}")
    return run


def worker_status(worker: Worker) -> dict:
    [live] = read_live([key_of(worker)], time.time())
    age = live.heartbeat_age(time.time())
    return {
        "worker": worker.name, "run": current_run().name, "node": worker.node_name, "desired": worker.desired_state,
        "observed": worker.observed_state, "pid": worker.pid, "restarts": worker.restarts,
        "heartbeat_age": None if age is None else round(age, 1), "consuming": bool(live.consuming),
        "rss_mb": None if live.rss is None else round(live.rss / 2**20, 1),
        "ok": live.ok, "malformed": live.malformed, "queue": live.queue, "last_error": worker.last_error,
    }


def status_results(workers: list[Worker]) -> list[WorkerResult]:
    """The status of each worker in the shape of an operation's results, for commands and the ControlAPI."""
    results = []
    for worker in workers:
        status = worker_status(worker)
        results.append(WorkerResult(worker.name, True, worker.observed_state,
                                    f"ok {status['ok']}, malformed {status['malformed']}, queue {status['queue']}"))
    return results


def queue_stats(workers: list[Worker]) -> dict[str, dict[str, int]]:
    client = get_redis()
    pipe = client.pipeline(transaction=False)
    for worker in workers:
        key = key_of(worker)
        pipe.llen(key.queue_key)
        pipe.scard(key.queued_key)
    answers = pipe.execute()
    return {w.name: {"messages": answers[2 * i], "samples_queued": answers[2 * i + 1]}
            for i, w in enumerate(workers)}
