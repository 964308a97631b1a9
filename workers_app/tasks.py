"""Celery tasks and the hooks that give each worker process its workbook flusher."""

from __future__ import annotations

import threading

from celery import shared_task
from celery.signals import worker_ready, worker_shutdown
from django.conf import settings

from .engine.annotate import Result, RetryLater, annotate_sample
from .engine.flusher import Flusher
from .engine.keys import WorkerKey
from .fleet import worker_side

flusher = Flusher(settings.FLUSH_EVERY_ROWS, settings.FLUSH_EVERY_SECONDS)


@shared_task(bind=True, name="workers_app.annotate", ignore_result=True)
def annotate(self, sample_ids: list[int], annotator_number: int, domain_slug: str) -> None:
    """Annotate each sample of the message; those hit by lasting transient errors come back later."""
    key = WorkerKey(annotator_number, domain_slug)
    later: list[int] = []
    delay = 0.0
    thread = threading.get_ident()
    for sample_id in sample_ids:
        worker_side.current_samples[thread] = sample_id
        try:
            result = annotate_sample(sample_id, key, worker=self.request.hostname or "")
        except RetryLater as exc:
            later.append(sample_id)
            delay = max(delay, exc.delay)
            continue
        finally:
            worker_side.current_samples.pop(thread, None)
        if result in (Result.STORED, Result.MALFORMED):
            flusher.note_stored(key)
    if later:
        raise self.retry(args=[later, annotator_number, domain_slug], countdown=delay, max_retries=None)


def _served_keys(consumer) -> list[WorkerKey]:
    managed = worker_side.managed_key()
    if managed is not None:
        return [managed]
    keys = []
    for name in consumer.app.amqp.queues.consume_from:
        try:
            keys.append(WorkerKey.parse(name))
        except ValueError:
            continue  # a control queue, not an annotation queue
    return keys


@worker_ready.connect
def _on_ready(sender, **kwargs) -> None:
    flusher.start(_served_keys(sender))
    managed = worker_side.managed_key()
    if managed is not None:
        worker_side.on_ready(sender, managed)


@worker_shutdown.connect
def _final_flush(sender, **kwargs) -> None:
    flusher.stop()


# Beat tasks (schedules live in the database: django-celery-beat, editable in the admin). Each is safe to
# run twice at once.

@shared_task(name="workers_app.health_sweep", ignore_result=True)
def health_sweep_task() -> None:
    from .monitoring.sweep import health_sweep

    health_sweep()


@shared_task(name="workers_app.snapshot_metrics", ignore_result=True)
def snapshot_metrics_task() -> None:
    from .monitoring.metrics import snapshot_metrics

    snapshot_metrics()


@shared_task(name="workers_app.prune_metrics")
def prune_metrics_task() -> int:
    from .monitoring.metrics import prune_metrics

    return prune_metrics()


@shared_task(name="workers_app.hourly_checks")
def hourly_checks_task() -> dict:
    from .monitoring.storage import hourly_checks

    return hourly_checks()


@shared_task(name="admin_ops.scheduled_archive")
def scheduled_archive_task() -> str:
    from admin_ops.services.archive import scheduled_archive

    return scheduled_archive(keep=settings.ARCHIVE_KEEP).name
