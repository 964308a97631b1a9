"""Writes to the durable store, and the Redis caches that follow each write."""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, IntegrityError, connection
from django.db.models.sql import InsertQuery
from django.utils import timezone
from redis.exceptions import RedisError

from audit.actions import Action
from audit.services import audited
from workers_app.models import Annotator, MalformedAttempt, Outcome
from workers_app.redis_client import get_redis
from workers_app.review.flags import flag_stored

from . import counters
from .gold import record_gold
from .keys import RATE_BUCKET_SECONDS, RATE_BUCKETS_KEPT, WorkerKey

log = logging.getLogger(__name__)
GOLD_ACTOR = "system:worker"


def store_outcomes(key: WorkerKey, rows: list[dict]) -> int:
    """Insert the outcomes of one message in one multi-row INSERT (atomic by itself: one write lock, one commit);
    return how many are new. A row that a redelivered copy of the message stored first makes the batch fall back
    to one by one."""
    if not rows:
        return 0
    try:
        _insert_all([Outcome(**fields) for fields in rows])
        stored = rows
    except IntegrityError:
        stored = [fields for fields in rows if _insert_unless_stored(fields)]
    with _cache_update(key):
        now = time.time()
        pipe = get_redis().pipeline(transaction=False)
        counters.add_stored(pipe, key, rows[0]["run"].pk, Counter(fields["status"] for fields in stored), now)
        if stored:
            bucket = key.rate_key(int(now // RATE_BUCKET_SECONDS))
            pipe.incrby(bucket, len(stored))
            pipe.expire(bucket, RATE_BUCKET_SECONDS * RATE_BUCKETS_KEPT)
            pipe.lpush(key.recent_key, *(fields["status"] for fields in stored))
            pipe.ltrim(key.recent_key, 0, settings.HEALTH_ERROR_WINDOW - 1)
        pipe.srem(key.queued_key, *(fields["sample"].pk for fields in rows))
        pipe.execute()
    # After the outcomes and their counters: a redelivered copy finds its outcomes stored, so it flags from every
    # row, not only the new ones; a failed flag fails the task (its message is retried) and the sync repairs it.
    flag_stored(rows)
    record_gold(stored, actor=GOLD_ACTOR)
    return len(stored)


def _insert_all(outcomes: list[Outcome]) -> None:
    """One statement in autocommit, compiled before it runs. Not ``bulk_create``: that opens a transaction and
    runs Python between its statements while holding SQLite's write lock; with thirty busy processes on two cores a
    holder descheduled there made other writers wait past the busy timeout ("database is locked")."""
    fields = [f for f in Outcome._meta.concrete_fields if not f.primary_key]
    query = InsertQuery(Outcome)
    query.insert_values(fields, outcomes)
    [(sql, params)] = query.get_compiler(using=DEFAULT_DB_ALIAS).as_sql()
    with connection.cursor() as cursor:
        cursor.execute(sql, params)


def _insert_unless_stored(fields: dict) -> bool:
    try:
        Outcome.objects.create(**fields)  # one INSERT in autocommit: atomic without a savepoint
    except IntegrityError:
        return False
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


def mark_structured_refused(annotator: Annotator, message: str, *, actor: str) -> bool:
    """Record once that the server refused structured output and the annotator now answers in free text (staff
    allowed that fallback), so its workers stop asking the refused way."""
    with audited(Action.STRUCTURED_REFUSED, actor=actor, target=str(annotator),
                 parameters={"message": message, "structured": annotator.structured}) as entry:
        changed = Annotator.objects.filter(pk=annotator.pk, structured_refused="").update(
            structured_refused=message, structured_refused_at=timezone.now())
        entry.detail = {"recorded": bool(changed), "fallback": "free text"}
    return bool(changed)


def clear_backend_error(annotator: Annotator, *, actor) -> None:
    """Let the annotator's workers call again, and ask in its structured mode again if the server refused it."""
    with audited(Action.CLEAR_BACKEND_ERROR, actor=actor, target=str(annotator)):
        Annotator.objects.filter(pk=annotator.pk).update(backend_error="", backend_error_at=None,
                                                         structured_refused="", structured_refused_at=None)
