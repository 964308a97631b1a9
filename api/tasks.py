"""The API's background job: a consolidation, run by the control worker, its workbook named after the job."""

from __future__ import annotations

from pathlib import Path

from celery import shared_task

from admin_ops.services.consolidate import consolidate
from workers_app.fleet.selectors import chosen_run
from workers_app.references.selectors import reference_by_name
from workers_app.runs.files import consolidated_dir


def job_workbook(job: str, run: str | None) -> Path:
    """In the run's consolidated folder; a job started before runs existed (no run) wrote to DATA_DIR/consolidated."""
    return consolidated_dir(run) / f"api-{job}.xlsx"


@shared_task(bind=True, name="api.consolidate")
def consolidate_task(self, actor: str, run: str | None = None, reference: str | None = None) -> dict:
    report = consolidate(job_workbook(self.request.id, run), actor=actor, run=chosen_run(run),
                         reference=reference_by_name(reference) if reference else None)
    return {"file": report.path.name, "review": report.review}
