"""Reads the API composes from the fleet's and monitoring's own reads: one pipelined Redis round trip and a few
grouped queries for any number of workers, never a round trip per worker. The live counters are of the current
run; what counts or lists outcomes is of one run, the current one unless the caller names another."""

from __future__ import annotations

import re
import time

from django.db.models import Count, Q

from workers_app.engine.batch_requests import batches_in_flight
from workers_app.engine.keys import WorkerKey
from workers_app.engine.live import Live, read_live
from workers_app.engine.queues import UnknownWorker
from workers_app.fleet.rows import key_of, select_workers
from workers_app.models import Annotator, Outcome, Run, Worker
from workers_app.monitoring.checks import WorkerHealth, evaluate
from workers_app.review.flags import URGENCY, describe
from workers_app.review.selectors import run_review_items
from workers_app.runs.current import current_run, run_samples, takes_part

WORKER_NAME = re.compile(r"annotator_[0-9]{1,9}_[A-Za-z0-9_-]{1,50}")


def find_worker(name: str) -> Worker:
    """The worker called ``name`` (annotator_N_domain); UnknownWorker if there is none."""
    if not WORKER_NAME.fullmatch(name):
        raise UnknownWorker(f"not a worker name: {name[:100]!r} (expected annotator_<n>_<domain>)")
    key = WorkerKey.parse(name)
    return select_workers(key.annotator, key.domain)[0]


def live_status(live: Live, worker: Worker, now: float) -> dict:
    """A worker's heartbeat, progress counters and queue length as the API shows them."""
    age = live.heartbeat_age(now)
    return {"heartbeat_age": None if age is None else round(age, 1), "consuming": bool(live.consuming),
            "rss_bytes": live.rss, "pid": live.pid if live.pid is not None else worker.pid,
            "ok": live.ok, "malformed": live.malformed, "queue": live.queue}


def _in_run(run: Run, worker: Worker) -> bool:
    return takes_part(run, worker.annotator.number, worker.domain.slug)


def _status(worker: Worker, run: Run, health: WorkerHealth, now: float) -> dict:
    return {"worker": worker.name, "annotator": worker.annotator.number, "domain": worker.domain.slug,
            "run": run.name, "in_run": _in_run(run, worker), "host": worker.host, "node": worker.node_name, "desired": worker.desired_state,
            "observed": worker.observed_state, "restarts": worker.restarts, "last_error": worker.last_error,
            "healthy": health.healthy, **live_status(health.live, worker, now)}


def fleet_status(workers: list[Worker], *, with_checks: bool = False) -> list[dict]:
    """Each worker's state, live readings (of the current run) and health; ``with_checks`` adds the five checks
    (the workbook check opens each workbook, so only a worker's detail asks for it)."""
    run = current_run()
    now = time.time()
    health = evaluate(workers, with_workbooks=with_checks)
    rows = []
    for worker, report in zip(workers, health, strict=True):
        row = _status(worker, run, report, now)
        if with_checks:
            row["checks"] = report.as_dict()["checks"]
            row["batches"] = _batches(worker, now)
        rows.append(row)
    return rows


def _batches(worker: Worker, now: float) -> dict | None:
    found = batches_in_flight().get((worker.annotator.number, worker.domain.slug))
    if found is None:
        return None
    return {"in_flight": found.batches, "requests": found.requests, "pending": found.pending,
            "oldest_age": round(now - found.oldest.timestamp(), 1) if found.oldest else None}


def fleet_health(workers: list[Worker]) -> dict:
    reports = evaluate(workers)
    return {"healthy": all(r.healthy for r in reports), "run": current_run().name,
            "workers": [r.as_dict() for r in reports]}


def _stored(workers: list[Worker], run: Run) -> dict[int, tuple[int, int]]:
    """(ok, malformed) outcomes of each worker in ``run``: the live counters for the current run, one grouped query
    for another (the counters hold the current run's only)."""
    if run.is_current:
        live = read_live([key_of(w) for w in workers], time.time())
        return {w.pk: (state.ok, state.malformed) for w, state in zip(workers, live, strict=True)}
    counted = {(row["annotator_id"], row["domain_id"]): (row["ok"], row["malformed"])
               for row in Outcome.objects.filter(run=run).values("annotator_id", "domain_id").annotate(
                   ok=Count("id", filter=Q(status=Outcome.Status.OK)),
                   malformed=Count("id", filter=Q(status=Outcome.Status.MALFORMED))).order_by()}
    return {w.pk: counted.get((w.annotator_id, w.domain_id), (0, 0)) for w in workers}


def fleet_progress(workers: list[Worker], run: Run) -> dict:
    """Outcomes stored per worker in ``run`` against the run's samples; a worker the run does not take expects
    none."""
    samples = run_samples(run).count()
    stored = _stored(workers, run)
    rows = []
    for worker in workers:
        ok, malformed = stored[worker.pk]
        in_run = _in_run(run, worker)
        expected = samples if in_run else 0
        rows.append({"worker": worker.name, "in_run": in_run, "ok": ok, "malformed": malformed,
                     "done": ok + malformed, "expected": expected, "remaining": max(expected - ok - malformed, 0),
                     "percent": round(100 * (ok + malformed) / expected, 1) if expected else 0.0})
    done, expected = sum(r["done"] for r in rows), sum(r["expected"] for r in rows)
    return {"run": run.name, "samples": samples, "done": done, "expected": expected,
            "percent": round(100 * done / expected, 1) if expected else 0.0, "workers": rows}


def review_items(run: Run) -> list[dict]:
    """The clinical review queue of ``run``'s posts, highest risk first (as on the consolidated Review sheet): the
    items made as outcomes were stored, with each annotator's urgency label in ``run``; two queries, whatever the
    store's size."""
    items = list(run_review_items(run).select_related("sample"))
    annotators = list(Annotator.objects.order_by("number").values_list("number", flat=True))
    given = {(sample, number): labels[0] if labels else "" for sample, number, labels in Outcome.objects.filter(
        run=run, domain__slug=URGENCY, status=Outcome.Status.OK, sample__review_item__isnull=False).values_list(
        "sample_id", "annotator__number", "labels")}
    return [{"sample": item.sample.external_id, "why": describe(item.reasons, item.spread), "risk": item.risk,
             "status": item.status, "urgency": {str(a): given.get((item.sample_id, a), "") for a in annotators}}
            for item in items]
