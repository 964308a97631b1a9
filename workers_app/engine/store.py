"""Writes to the durable store, and the Redis caches that follow each write."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager

from django.conf import settings
from django.db import IntegrityError
from django.utils import timezone
from redis.exceptions import RedisError

from audit.actions import Action
from audit.services import audited
from workers_app.models import Annotator, MalformedAttempt, Outcome
from workers_app.redis_client import get_redis

from .keys import WorkerKey

log = logging.getLogger(__name__)


def store_outcome(key: WorkerKey, **fields) -> bool:
    """Insert the outcome; False when a redelivered copy of the task stored it first."""
    try:
        Outcome.objects.create(**fields)  # one INSERT in autocommit: atomic without a savepoint
    except IntegrityError:
        return False
    with _cache_update(key):
        pipe = get_redis().pipeline(transaction=False)
        pipe.hincrby(key.progress_key, fields["status"], 1)
        pipe.hset(key.progress_key, "last_at", time.time())
        pipe.lpush(key.recent_key, fields["status"])
        pipe.ltrim(key.recent_key, 0, settings.HEALTH_ERROR_WINDOW - 1)
        pipe.srem(key.queued_key, fields["sample"].pk)
        pipe.execute()
    return True


def forget_queued(key: WorkerKey, sample_id: int) -> None:
    with _cache_update(key):
        get_redis().srem(key.queued_key, sample_id)


@contextmanager
def _cache_update(key: WorkerKey) -> Iterator[None]:
    """Redis only caches what the store holds: an outage must not fail the task after its outcome is stored (the
    rest of the message would be dropped with it). A sync rebuilds the counters from the store."""
    try:
        yield
    except RedisError as exc:
        log.warning("%s: Redis counters not updated (%s); a checkpoint sync rebuilds them", key, exc)


def log_malformed(**fields) -> None:
    MalformedAttempt.objects.create(**fields)


def mark_backend_error(annotator: Annotator, message: str, *, actor: str) -> bool:
    """Record a permanent backend failure once, so the annotator's workers stop calling."""
    with audited(Action.BACKEND_ERROR, actor=actor, target=str(annotator), parameters={"message": message}) as entry:
        changed = Annotator.objects.filter(pk=annotator.pk, backend_error="").update(
            backend_error=message, backend_error_at=timezone.now())
        entry.detail = {"recorded": bool(changed)}
    return bool(changed)


def clear_backend_error(annotator: Annotator, *, actor) -> None:
    with audited(Action.CLEAR_BACKEND_ERROR, actor=actor, target=str(annotator)):
        Annotator.objects.filter(pk=annotator.pk).update(backend_error="", backend_error_at=None)
