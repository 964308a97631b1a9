"""The budget's part of the sweep: one alert per annotator whose spend reached its budget, and its live workers
told to pause (the engine only records the wish and stops calling); the alert resolves once the budget is raised."""

from __future__ import annotations

from workers_app.engine.budget import REASON, over_budget, pause_for_budget
from workers_app.fleet.services import pause_workers
from workers_app.models import Annotator, Worker

from .alerts import Incident, sync_alerts

ACTOR = "system:monitor"
KIND = REASON


def _incident(annotator: Annotator, used) -> Incident:
    return Incident(f"{KIND}:{annotator.number}", KIND,
                    f"annotator {annotator.number} reached its budget: spent {used.normalize():f} of "
                    f"{annotator.budget.normalize():f}; its workers are paused (reason budget). Raise the budget "
                    "and resume them to continue.")


def budget_sweep() -> None:
    incidents = []
    for annotator in Annotator.objects.filter(budget__isnull=False):
        used = over_budget(annotator)
        if used is None:
            continue
        pause_for_budget(annotator, used, actor=ACTOR)  # nothing to record if a worker thread did it first
        live = list(Worker.objects.select_related("annotator", "domain").filter(
            annotator=annotator, desired_state=Worker.Desired.PAUSED, observed_state=Worker.Observed.RUNNING))
        if live:
            pause_workers(live, actor=ACTOR)
        incidents.append(_incident(annotator, used))
    sync_alerts(incidents, scope={KIND})
