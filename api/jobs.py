"""Consolidation jobs started through the API: a Celery task, and a Redis note that the API started it (so that an
id nobody started is a 404, not a job forever 'queued')."""

from __future__ import annotations

from celery.result import AsyncResult
from django.conf import settings

from audit.actors import Actor, actor_name
from workers_app.engine.keys import PREFIX
from workers_app.redis_client import get_redis

from .tasks import CONSOLIDATED, consolidate_task, job_workbook_name

KEEP_SECONDS = 7 * 24 * 3600
STATES = {"PENDING": "queued", "RECEIVED": "queued", "STARTED": "running", "RETRY": "running",
          "SUCCESS": "done", "FAILURE": "failed", "REVOKED": "failed"}


def _key(job: str) -> str:
    return f"{PREFIX}:api:consolidation:{job}"


def start_consolidation(*, actor: Actor) -> str:
    job = consolidate_task.delay(actor_name(actor)).id
    get_redis().set(_key(job), actor_name(actor), ex=KEEP_SECONDS)
    return job


def consolidation_status(job: str) -> dict | None:
    """None for a job the API did not start (or forgot after a week)."""
    started_by = get_redis().get(_key(job))
    if started_by is None:
        return None
    result = AsyncResult(job)
    state = STATES.get(result.state, "running")
    found = {"job": job, "status": state, "started_by": started_by, "review": None, "error": ""}
    if state == "done":
        found["review"] = result.result.get("review")
    elif state == "failed":
        found["error"] = str(result.result)[:500]
    return found


def consolidation_workbook(job: str):
    return settings.DATA_DIR / CONSOLIDATED / job_workbook_name(job)
