"""Celery tasks and the hooks that give each worker process its workbook flusher."""

from __future__ import annotations

from celery import shared_task
from celery.signals import worker_ready, worker_shutdown
from django.conf import settings

from .engine.annotate import Result, RetryLater, annotate_sample
from .engine.flusher import Flusher
from .engine.keys import WorkerKey

flusher = Flusher(settings.FLUSH_EVERY_ROWS, settings.FLUSH_EVERY_SECONDS)


@shared_task(bind=True, name="workers_app.annotate", ignore_result=True)
def annotate(self, sample_id: int, annotator_number: int, domain_slug: str) -> str:
    key = WorkerKey(annotator_number, domain_slug)
    try:
        result = annotate_sample(sample_id, key, worker=self.request.hostname or "")
    except RetryLater as exc:
        raise self.retry(exc=exc, countdown=exc.delay, max_retries=None) from exc
    if result in (Result.STORED, Result.MALFORMED):
        flusher.note_stored(key)
    return result.value


def _served_keys(consumer) -> list[WorkerKey]:
    keys = []
    for name in consumer.app.amqp.queues.consume_from:
        try:
            keys.append(WorkerKey.parse(name))
        except ValueError:
            continue  # a control queue, not an annotation queue
    return keys


@worker_ready.connect
def _start_flusher(sender, **kwargs) -> None:
    flusher.start(_served_keys(sender))


@worker_shutdown.connect
def _final_flush(sender, **kwargs) -> None:
    flusher.stop()
