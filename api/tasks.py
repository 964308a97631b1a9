"""The API's background job: a consolidation, run by the control worker, its workbook named after the job."""

from __future__ import annotations

from celery import shared_task
from django.conf import settings

from admin_ops.services.consolidate import consolidate

CONSOLIDATED = "consolidated"


def job_workbook_name(job: str) -> str:
    return f"api-{job}.xlsx"


@shared_task(bind=True, name="api.consolidate")
def consolidate_task(self, actor: str) -> dict:
    report = consolidate(settings.DATA_DIR / CONSOLIDATED / job_workbook_name(self.request.id), actor=actor)
    return {"file": report.path.name, "review": report.review}
