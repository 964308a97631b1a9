"""Consolidation jobs started through the API: a Celery task, and a Redis note that the API started it (so that an
id nobody started is a 404, not a job forever 'queued') and for which run."""

from __future__ import annotations

import json
from pathlib import Path

from celery.result import AsyncResult

from audit.actors import Actor, actor_name
from workers_app.engine.keys import redis_key
from workers_app.models import ReferenceSet, Run
from workers_app.redis_client import get_redis

from .tasks import consolidate_task, job_workbook

KEEP_SECONDS = 7 * 24 * 3600
STATES = {"PENDING": "queued", "RECEIVED": "queued", "STARTED": "running", "RETRY": "running",
          "SUCCESS": "done", "FAILURE": "failed", "REVOKED": "failed"}


def _key(job: str) -> str:
    return redis_key("api", "consolidation", job)


def _note(job: str) -> dict | None:
    """Who started the job, for which run; a note written before runs existed holds the actor's name only."""
    raw = get_redis().get(_key(job))
    if raw is None:
        return None
    try:
        return json.loads(raw)
    except ValueError:
        return {"by": raw, "run": None}


def start_consolidation(run: Run, *, actor: Actor, reference: ReferenceSet | None = None) -> str:
    """A Quality sheet against ``reference`` when given (else against the adjudicated set, once it has labels)."""
    job = consolidate_task.delay(actor_name(actor), run.name, reference.name if reference else None).id
    get_redis().set(_key(job), json.dumps({"by": actor_name(actor), "run": run.name}), ex=KEEP_SECONDS)
    return job


def consolidation_status(job: str) -> dict | None:
    """None for a job the API did not start (or forgot after a week)."""
    note = _note(job)
    if note is None:
        return None
    result = AsyncResult(job)
    state = STATES.get(result.state, "running")
    found = {"job": job, "status": state, "started_by": note["by"], "run": note["run"], "review": None, "error": ""}
    if state == "done":
        found["review"] = result.result.get("review")
    elif state == "failed":
        found["error"] = str(result.result)[:500]
    return found


def consolidation_workbook(found: dict) -> Path:
    """The workbook of a job, from its status."""
    return job_workbook(found["job"], found["run"])
