"""The budget's part of the sweep: one alert per annotator, and for the current run, whose spend reached its budget,
and their live workers told to pause (the engine only records the wish and stops calling); the alert resolves once
the budget is raised."""

from __future__ import annotations

from decimal import Decimal

from django.db.models import QuerySet

from workers_app.engine.budget import REASON, Payer, over_budget, pause_for_budget
from workers_app.fleet.services import pause_workers
from workers_app.models import Annotator, Run, Worker

from .alerts import Incident, sync_alerts

ACTOR = "system:monitor"
KIND = REASON


def _incident(key: str, payer: Payer, used: Decimal) -> Incident:
    return Incident(f"{KIND}:{key}", KIND,
                    f"{payer.label} reached its budget: spent {used.normalize():f} of {payer.budget.normalize():f}; "
                    "its workers are paused (reason budget). Raise the budget and resume them to continue.")


def _payers() -> list[tuple[str, Payer]]:
    payers = [(str(a.number), Payer.of_annotator(a)) for a in Annotator.objects.filter(budget__isnull=False)]
    # Read afresh (not the per-process cache of the current run): a budget raised a moment ago resolves the alert.
    run = Run.objects.filter(is_current=True, budget__isnull=False).first()
    return payers + ([(f"run:{run.name}", Payer.of_run(run))] if run else [])


def pause_live(workers: QuerySet, *, actor: str) -> None:
    """Tell the live processes of ``workers`` whose pause the engine recorded (desired paused, still running)."""
    live = list(workers.select_related("annotator", "domain").filter(
        desired_state=Worker.Desired.PAUSED, observed_state=Worker.Observed.RUNNING))
    if live:
        pause_workers(live, actor=actor)


def budget_sweep() -> None:
    incidents = []
    for key, payer in _payers():
        used = over_budget(payer)
        if used is None:
            continue
        pause_for_budget(payer, used, actor=ACTOR)  # nothing to record if a worker thread did it first
        pause_live(payer.workers, actor=ACTOR)
        incidents.append(_incident(key, payer, used))
    sync_alerts(incidents, scope={KIND})
