"""Celery tasks of the engine, fleet and monitoring, and the worker-process hooks: each a thin call into the
service it is named after. Beat schedules live in the database (django-celery-beat, editable in the admin);
every beat task is safe to run twice at once."""

from __future__ import annotations

from celery import shared_task
from celery.signals import worker_ready, worker_shutdown
from django.db import DatabaseError

from .engine.annotate import annotate_samples
from .engine.keys import WorkerKey
from .engine.queues import ANNOTATE_TASK
from .fleet import worker_side
from .monitoring.metrics import prune_metrics, snapshot_metrics
from .monitoring.storage import hourly_checks
from .monitoring.sweep import health_sweep

DATABASE_RETRY_SECONDS = 2


@shared_task(bind=True, name=ANNOTATE_TASK, ignore_result=True)
def annotate(self, sample_ids: list[int], annotator_number: int, domain_slug: str, run_id: int | None = None) -> None:
    """Annotate each sample of the message for its run; those hit by lasting transient errors come back later."""
    try:
        later, delay = annotate_samples(sample_ids, WorkerKey(annotator_number, domain_slug),
                                        worker=self.request.hostname or "", run_id=run_id)
    except DatabaseError as exc:
        # The database busy or away: this message would be acknowledged as failed and its samples left out of the
        # run until the next sync. Send it again instead; the store skips what was stored already.
        raise self.retry(exc=exc, countdown=DATABASE_RETRY_SECONDS, max_retries=None) from exc
    if later:
        raise self.retry(args=[later, annotator_number, domain_slug, run_id], countdown=delay, max_retries=None)


@worker_ready.connect
def _on_ready(sender, **kwargs) -> None:
    worker_side.on_worker_ready(sender)


@worker_shutdown.connect
def _on_shutdown(sender, **kwargs) -> None:
    worker_side.on_worker_shutdown()


@shared_task(name="workers_app.health_sweep", ignore_result=True)
def health_sweep_task() -> None:
    health_sweep()


@shared_task(name="workers_app.snapshot_metrics", ignore_result=True)
def snapshot_metrics_task() -> None:
    snapshot_metrics()


@shared_task(name="workers_app.prune_metrics")
def prune_metrics_task() -> int:
    return prune_metrics()


@shared_task(name="workers_app.hourly_checks")
def hourly_checks_task() -> dict:
    return hourly_checks()
