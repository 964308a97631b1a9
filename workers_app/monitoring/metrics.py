"""Per-minute metrics per worker, kept METRICS_KEEP_DAYS days."""

from __future__ import annotations

import statistics
import time
from collections import defaultdict
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from workers_app.engine.live import read_live
from workers_app.fleet.rows import ensure_worker_rows, key_of
from workers_app.models import Outcome, Worker, WorkerMetric
from workers_app.runs.current import current_run


def _percentile(values: list[int], share: float) -> int | None:
    if not values:
        return None
    if len(values) == 1:
        return values[0]
    return int(statistics.quantiles(values, n=100, method="inclusive")[int(share * 100) - 1])


def snapshot_metrics() -> int:
    """One row per worker for the minute just past, of the current run's outcomes (a message queued for the run
    before stores into it a little longer); safe to run twice (a minute is recorded once)."""
    minute = timezone.now().replace(second=0, microsecond=0)
    ensure_worker_rows()
    workers = list(Worker.objects.select_related("annotator", "domain"))
    done = set(WorkerMetric.objects.filter(at=minute).values_list("worker_id", flat=True))
    latencies: dict[tuple[int, int], list[int]] = defaultdict(list)
    malformed: dict[tuple[int, int], int] = defaultdict(int)
    for annotator, domain, status, latency in Outcome.objects.filter(
            run=current_run(), created_at__gte=minute - timedelta(minutes=1), created_at__lt=minute).values_list(
            "annotator_id", "domain_id", "status", "latency_ms"):
        latencies[(annotator, domain)].append(latency)
        malformed[(annotator, domain)] += status != Outcome.Status.OK
    live = read_live([key_of(w) for w in workers], time.time())
    rows = []
    for worker, state in zip(workers, live, strict=True):
        if worker.pk in done:
            continue
        pair = (worker.annotator_id, worker.domain_id)
        count = len(latencies[pair])
        rows.append(WorkerMetric(worker=worker, at=minute, throughput=count,
                                 malformed_rate=malformed[pair] / count if count else 0.0,
                                 latency_p50_ms=_percentile(sorted(latencies[pair]), 0.50),
                                 latency_p95_ms=_percentile(sorted(latencies[pair]), 0.95),
                                 queue_length=state.queue, rss=state.rss))
    with transaction.atomic():
        WorkerMetric.objects.bulk_create(rows)
    return len(rows)


def prune_metrics() -> int:
    cutoff = timezone.now() - timedelta(days=settings.METRICS_KEEP_DAYS)
    deleted, _ = WorkerMetric.objects.filter(at__lt=cutoff).delete()
    return deleted
