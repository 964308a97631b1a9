"""Everything one worker's page shows: its timeline, what it works on now, its log's tail, restarts and checks."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings

from workers_app.engine.batch_requests import BatchesInFlight, batches_in_flight
from workers_app.engine.gold import GoldScore, gold_scores
from workers_app.models import Annotator, Run, Sample, Worker, WorkerEvent
from workers_app.monitoring.checks import WorkerHealth, evaluate
from workers_app.monitoring.sweep import auto_restarts_in_last_hour
from workers_app.runs.current import current_run, run_samples, takes_part

LOG_LINES = 100
LOG_TAIL_BYTES = 256 * 1024  # enough for 100 lines of Celery's log; a huge file is never read whole
EVENTS = 100


@dataclass
class WorkerPage:
    worker: Worker
    health: WorkerHealth
    events: list[WorkerEvent]
    current: list[Sample]
    log_lines: list[str]
    log_note: str
    auto_restarts: int
    run: Run
    in_run: bool  # the current run takes this worker's annotator and domain
    samples: int  # the current run's samples this worker annotates; 0 when the run does not take it
    gold: GoldScore | None = None  # its annotator's gold answers, when the run in which it works checks gold
    gold_failing: bool = False
    batches: BatchesInFlight | None = None  # batch mode: its provider batches not ended, and what waits for one


def log_path(worker: Worker) -> Path:
    return settings.DATA_DIR / "logs" / f"{worker.name}.log"


def tail(path: Path, lines: int = LOG_LINES) -> list[str]:
    with path.open("rb") as handle:
        handle.seek(0, os.SEEK_END)
        size = handle.tell()
        handle.seek(max(0, size - LOG_TAIL_BYTES))
        data = handle.read()
    text = data.decode("utf-8", errors="replace").splitlines()
    if size > LOG_TAIL_BYTES:
        text = text[1:]  # the first line read is likely cut
    return text[-lines:]


def _log(worker: Worker) -> tuple[list[str], str]:
    if worker.host != settings.FLEET_HOST:
        return [], f"The log is on host {worker.host}: {log_path(worker)} there."
    path = log_path(worker)
    if not path.exists():
        return [], "No log yet: this worker has not run on this host."
    return tail(path), ""


def _current_samples(ids: list[int]) -> list[Sample]:
    return list(Sample.objects.filter(pk__in=ids).only("id", "external_id")) if ids else []


def worker_page(worker: Worker) -> WorkerPage:
    [health] = evaluate([worker])
    lines, note = _log(worker)
    run = current_run()
    in_run = takes_part(run, worker.annotator.number, worker.domain.slug)
    gold = gold_scores(run).get(worker.annotator.number, GoldScore(0, 0)) if in_run and run.checks_gold else None
    return WorkerPage(worker=worker, health=health, events=list(worker.events.all()[:EVENTS]),
                      current=_current_samples(health.live.current), log_lines=lines, log_note=note,
                      auto_restarts=auto_restarts_in_last_hour(worker), run=run, in_run=in_run,
                      samples=run_samples(run).count() if in_run else 0, gold=gold,
                      gold_failing=bool(gold and gold.failing(run)), batches=_batches(worker))


def _batches(worker: Worker) -> BatchesInFlight | None:
    found = batches_in_flight().get((worker.annotator.number, worker.domain.slug))
    if found is None and worker.annotator.mode == Annotator.Mode.BATCH:
        return BatchesInFlight()
    return found
