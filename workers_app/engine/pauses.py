"""A pause the engine decides on its own (a budget reached, gold accuracy fallen): the workers' desired state becomes
``paused`` with a WorkerEvent naming the reason, in one audited step. The monitor's sweep then tells the live
processes and opens the alert (monitoring.budgets.pause_live); resuming stays staff's decision."""

from __future__ import annotations

from django.db.models import QuerySet

from audit.actions import Action
from audit.services import audited
from workers_app.models import Worker, WorkerEvent


def running_workers(workers: QuerySet) -> list[Worker]:
    return list(workers.select_related("annotator", "domain").filter(desired_state=Worker.Desired.RUNNING))


def record_pause(running: list[Worker], reason: str, *, action: Action, actor: str, target: str,
                 parameters: dict) -> list[Worker]:
    """Pause those of ``running`` still wanted running (another thread may have been first), with one audit row
    naming them; returns those paused here."""
    with audited(action, actor=actor, target=target, parameters=parameters) as entry:
        paused = [w for w in running if Worker.objects.filter(pk=w.pk, desired_state=Worker.Desired.RUNNING)
                  .update(desired_state=Worker.Desired.PAUSED)]
        WorkerEvent.objects.bulk_create(WorkerEvent(worker=w, from_state=w.observed_state, to_state=w.observed_state,
                                                    reason=reason, actor=actor) for w in paused)
        entry.detail = {"paused": [w.name for w in paused]}
    return paused

