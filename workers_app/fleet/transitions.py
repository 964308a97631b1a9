"""Every change of a worker's observed state goes through here, so each one leaves a WorkerEvent."""

from __future__ import annotations

from workers_app.models import Worker, WorkerEvent


def set_observed(worker: Worker, state: str, *, reason: str, actor: str, **fields) -> bool:
    """Move to ``state`` from the state we last read (compare-and-swap); False if someone moved it first."""
    before = worker.observed_state
    changed = Worker.objects.filter(pk=worker.pk, observed_state=before).update(observed_state=state, **fields)
    if changed:
        worker.observed_state = state
        for name, value in fields.items():
            setattr(worker, name, value)
        if before != state:
            WorkerEvent.objects.create(worker=worker, from_state=before, to_state=state, reason=reason[:300],
                                       actor=actor)
    return bool(changed)


def force_observed(worker: Worker, state: str, *, reason: str, actor: str, **fields) -> None:
    """For the one writer that owns the process (its agent): record the state whatever it was."""
    worker.refresh_from_db(fields=["observed_state"])
    while not set_observed(worker, state, reason=reason, actor=actor, **fields):
        worker.refresh_from_db(fields=["observed_state"])
