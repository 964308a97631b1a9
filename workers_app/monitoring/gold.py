"""The gold checks' part of the sweep: for the current run, one alert per annotator whose rolling gold accuracy is
below the run's threshold (judged on at least its minimum of gold items), and its live workers told to pause when
the engine recorded the pause. The alert resolves once the accuracy is back at the threshold; resuming the workers
is staff's decision, and a resumed annotator still below keeps its alert."""

from __future__ import annotations

from workers_app.engine.gold import REASON, GoldScore, gold_scores
from workers_app.models import Run, Worker

from .alerts import Incident, sync_alerts
from .budgets import pause_live

ACTOR = "system:monitor"
KIND = REASON


def _incident(run: Run, number: int, score: GoldScore) -> Incident:
    return Incident(f"{KIND}:{run.name}:{number}", KIND,
                    f"annotator {number} in run {run.name}: {score.reason(run)}; its workers were paused (reason "
                    "gold). Check its answers on the quality page; resuming it is staff's decision.")


def gold_sweep() -> None:
    incidents = []
    # Read afresh (not the per-process cache of the current run).
    run = Run.objects.filter(is_current=True, gold_reference__isnull=False).first()
    if run is not None:
        for number, score in gold_scores(run).items():
            if score.failing(run):
                pause_live(Worker.objects.filter(annotator__number=number), actor=ACTOR)
                incidents.append(_incident(run, number, score))
    sync_alerts(incidents, scope={KIND})
