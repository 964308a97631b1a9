"""Background jobs started through the API or the workspace: a Celery task on the control worker, a Redis note of
who started it and what for (so that an id nobody started is unknown, not a job forever 'queued'), and the progress
its task reports. Kinds: a consolidation, an archive, a corpus import (or its check)."""

from __future__ import annotations

import json
from pathlib import Path

from celery.result import AsyncResult

from audit.actors import Actor, actor_name
from workers_app.engine.keys import redis_key
from workers_app.models import ReferenceSet, Run
from workers_app.redis_client import get_redis

from .progress import KEEP_SECONDS, read_progress
from .tasks import archive_task, consolidate_task, import_task, job_workbook

KINDS = ("consolidation", "archive", "import")
STATES = {"PENDING": "queued", "RECEIVED": "queued", "STARTED": "running", "RETRY": "running",
          "SUCCESS": "done", "FAILURE": "failed", "REVOKED": "failed"}


def _key(kind: str, job: str) -> str:
    return redis_key("api", kind, job)


def _note(kind: str, job: str) -> dict | None:
    """Who started the job and for what; a consolidation's note written before runs existed holds a name only."""
    raw = get_redis().get(_key(kind, job))
    if raw is None:
        return None
    try:
        return json.loads(raw)
    except ValueError:
        return {"by": raw, "run": None}


def _started(kind: str, job: str, actor: Actor, **about) -> str:
    get_redis().set(_key(kind, job), json.dumps({"by": actor_name(actor), **about}), ex=KEEP_SECONDS)
    return job


def start_consolidation(run: Run, *, actor: Actor, reference: ReferenceSet | None = None) -> str:
    """A Quality sheet against ``reference`` when given (else against the adjudicated set, once it has labels)."""
    job = consolidate_task.delay(actor_name(actor), run.name, reference.name if reference else None).id
    return _started("consolidation", job, actor, run=run.name)


def start_archive(name: str, run: Run | None, *, actor: Actor) -> str:
    run_name = run.name if run else None
    return _started("archive", archive_task.delay(actor_name(actor), name, run_name).id, actor, run=run_name,
                    name=name)


def start_import(upload: str, name: str, options: dict, *, check_only: bool, actor: Actor) -> str:
    """``upload`` is the token of a kept upload (annotation_site.uploads), ``name`` the file's name as given."""
    job = import_task.delay(actor_name(actor), upload, name, options, check_only).id
    return _started("import", job, actor, file=name, upload=upload, check_only=check_only, options=options)


def job_status(kind: str, job: str) -> dict | None:
    """What a job is doing: ``status`` queued, running, done or failed, its note, its last reported progress and,
    when done, its result; None for a job nobody started (or forgotten after a week)."""
    note = _note(kind, job) if kind in KINDS else None
    if note is None:
        return None
    result = AsyncResult(job)
    progress = read_progress(kind, job)
    state = STATES.get(result.state, "running")
    if state == "queued" and progress is not None:
        state = "running"  # the task has begun: it reported a step
    found = {"job": job, "kind": kind, "status": state, "started_by": note["by"], "run": note.get("run"),
             "note": note, "progress": progress, "result": None, "error": ""}
    if state == "done":
        found["result"] = result.result
    elif state == "failed":
        found["error"] = str(result.result)[:500]
    return found


def consolidation_status(job: str) -> dict | None:
    """A consolidation job as the API answers it."""
    found = job_status("consolidation", job)
    if found is None:
        return None
    review = found["result"].get("review") if found["result"] else None
    return {"job": job, "status": found["status"], "started_by": found["started_by"], "run": found["run"],
            "review": review, "error": found["error"]}


def consolidation_workbook(found: dict) -> Path:
    """The workbook of a job, from its status."""
    return job_workbook(found["job"], found["run"])
