"""What the dashboard shows of the fleet, read in one pass whatever its size: the workers (one query), their live
state (one pipelined Redis round trip), the open alerts grouped by kind and the current run's sample count (one
query each)."""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field

from workers_app.engine.batch_requests import BatchesInFlight, batches_in_flight
from workers_app.engine.gold import GoldScore, gold_scores
from workers_app.engine.keys import redis_key
from workers_app.fleet.rows import ensure_worker_rows
from workers_app.models import Annotator, Domain, Run, Worker
from workers_app.monitoring.checks import WorkerHealth, evaluate
from workers_app.monitoring.open_alerts import alert_groups, new_alerts_per_worker
from workers_app.redis_client import get_redis
from workers_app.runs.current import current_run, run_samples, takes_part

from .alerts import group_json

# Every viewer polls each second; within this many milliseconds they share one snapshot, so ten viewers cost the
# database and Redis what one does. It holds nothing per user: all who may view workers see the same fleet.
SHARED_FOR_MS = 500
SHARED_KEY = redis_key("dashboard", "live")
NOT_IN_RUN = "not in this run"


@dataclass
class Cell:
    name: str
    annotator: int
    domain: str
    state: str
    desired: str
    host: str
    done: int
    malformed: int
    total: int
    per_minute: int
    malformed_pct: float | None
    heartbeat_age: float | None
    queue: int
    failed: list[str] = field(default_factory=list)
    alerts: int = 0
    inflight: int | None = None
    in_run: bool = True  # the current run takes this worker's annotator and domain
    gold: str = ""  # its annotator's rolling gold accuracy when the run has gold checks, e.g. "0.83 over 12"
    gold_failing: bool = False  # judged and below the run's threshold
    batches: str = ""  # batch mode: its provider batches in flight, e.g. "2 batches in flight (1,000 requests, 3 min)"

    @property
    def display(self) -> dict[str, str]:
        """The cell's texts, formatted once here for the page and for its live updates. The cell shows the short
        ones; ``summary`` (its hover text) and the worker's page say the rest."""
        beat = "—" if self.heartbeat_age is None else f"{self.heartbeat_age:.0f} s ago"
        texts = {"state": self.state if self.state == self.desired or self.desired == "running"
                 else f"{self.state} (wanted {self.desired})",
                 "progress": f"{self.done:,} / {self.total:,}" if self.in_run else NOT_IN_RUN,
                 "per_minute": f"{self.per_minute:,}/min",
                 "malformed": "—" if self.malformed_pct is None else f"{self.malformed_pct:.1f} %",
                 "heartbeat": beat, "queue": f"{self.queue:,} queued",
                 "inflight": "" if self.inflight is None else f"up to {self.inflight} in flight",
                 "failed": "; ".join(self.failed) if self.failed else "all checks pass",
                 "checks": f"{len(self.failed)} check{'s' if len(self.failed) != 1 else ''} fail" if self.failed
                 else "checks pass",
                 "alerts": f"{self.alerts} alert{'s' if self.alerts != 1 else ''}" if self.alerts else "",
                 "gold": f"gold {self.gold}" if self.gold else "", "batches": self.batches}
        texts["summary"] = "\n".join([
            f"{self.name} on {self.host or 'no host yet'}: {texts['state']}", f"progress {texts['progress']}",
            f"{texts['per_minute']}, malformed {texts['malformed']}", f"heartbeat {beat}",
            f"{texts['queue']} {texts['inflight']}".strip(), texts["failed"],
            *([f"{texts['gold']}{' (below the threshold)' if self.gold_failing else ''}"] if self.gold else []),
            *([self.batches] if self.batches else []),
            *([f"{self.alerts} new alert{'s' if self.alerts != 1 else ''}"] if self.alerts else [])])
        return texts


@dataclass
class Snapshot:
    run: str  # the current run's name: every count here is of its outcomes and samples
    annotators: list[int]
    domains: list[str]
    cells: dict[str, Cell]
    alerts: list[dict]  # one per kind of open alert (alerts.group_json)
    at: float

    def grid(self) -> list[tuple[int, list[Cell | None]]]:
        """Rows of annotators, columns of domains; None where a worker row does not exist."""
        by_pair = {(c.annotator, c.domain): c for c in self.cells.values()}
        return [(a, [by_pair.get((a, d)) for d in self.domains]) for a in self.annotators]

    @property
    def has_new_alerts(self) -> bool:
        return any(group["new"] for group in self.alerts)

    @property
    def totals(self) -> dict:
        cells = self.cells.values()
        return {"done": sum(c.done for c in cells), "total": sum(c.total for c in cells),
                "per_minute": sum(c.per_minute for c in cells), "queue": sum(c.queue for c in cells),
                "running": sum(c.state == Worker.Observed.RUNNING for c in cells), "workers": len(self.cells)}

    def as_json(self) -> dict:
        return {"at": self.at, "run": self.run, "cells": {name: {**asdict(cell), "display": cell.display}
                                         for name, cell in self.cells.items()},
                "alerts": self.alerts, "totals": self.totals}


def _workers() -> list[Worker]:
    rows = list(Worker.objects.select_related("annotator", "domain"))
    if not rows and Annotator.objects.exists() and Domain.objects.exists():
        ensure_worker_rows()  # a new install: the rows appear with the first look, as in the admin
        rows = list(Worker.objects.select_related("annotator", "domain"))
    return rows


def _batches_text(found: BatchesInFlight | None, now: float) -> str:
    if found is None or not (found.batches or found.pending):
        return ""
    age = f", oldest {(now - found.oldest.timestamp()) / 60:.0f} min" if found.oldest else ""
    return (f"{found.batches} batch{'es' if found.batches != 1 else ''} in flight ({found.requests:,} requests{age})"
            + (f", {found.pending:,} waiting" if found.pending else ""))


def _cell(health: WorkerHealth, run: Run, samples: int, alerts: int, gold: dict[int, GoldScore],
          batches: str = "") -> Cell:
    worker = health.worker
    in_run = takes_part(run, worker.annotator.number, worker.domain.slug)
    score = gold.get(worker.annotator.number, GoldScore(0, 0)) if in_run and run.checks_gold else None
    return Cell(name=worker.name, annotator=worker.annotator.number, domain=worker.domain.slug,
                state=worker.observed_state, desired=worker.desired_state, host=worker.host, done=health.stored,
                malformed=health.malformed, total=samples if in_run else 0, per_minute=health.per_minute,
                malformed_pct=round(100 * health.malformed / health.stored, 1) if health.stored else None,
                heartbeat_age=health.heartbeat_age if worker.observed_state != Worker.Observed.STOPPED else None,
                queue=health.queue, failed=[f"{c.name}: {c.reason}" for c in health.checks if not c.ok],
                alerts=alerts, inflight=health.inflight_target, in_run=in_run,
                gold=score.text() if score else "", gold_failing=bool(score and score.failing(run)), batches=batches)


def live_json() -> bytes:
    """The snapshot as JSON, made at most once per SHARED_FOR_MS whoever asks."""
    client = get_redis()
    shared = client.get(SHARED_KEY)
    if shared is None:
        shared = json.dumps(fleet_snapshot().as_json(), separators=(",", ":"))
        client.set(SHARED_KEY, shared, px=SHARED_FOR_MS)
    return shared.encode() if isinstance(shared, str) else shared


def fleet_snapshot() -> Snapshot:
    now = time.time()
    workers = _workers()
    run = current_run()
    samples = run_samples(run).count()
    groups = alert_groups()
    per_worker = new_alerts_per_worker(groups)
    names = {w.pk: w.name for w in workers}
    gold = gold_scores(run)
    in_batches = batches_in_flight()
    cells = {h.worker.name: _cell(h, run, samples, per_worker.get(h.worker.pk, 0), gold, _batches_text(
                 in_batches.get((h.worker.annotator.number, h.worker.domain.slug)), now))
             for h in evaluate(workers, read_files=False)}
    annotators = sorted({w.annotator.number for w in workers})
    domains = [slug for _, slug in sorted({(w.domain.position, w.domain.slug) for w in workers})]
    return Snapshot(run.name, annotators, domains, cells, [group_json(g, names) for g in groups], now)
