"""A consolidation through the API: start -> job id -> status -> download, run by a real control worker."""

from __future__ import annotations

import io
import uuid

import openpyxl
import pytest
from django.conf import settings

from tests.helpers import make_samples, wait_until
from tests.worker_processes import WorkerProcess
from workers_app.models import DEFAULT_RUN
from workers_app.redis_client import get_redis
from workers_app.runs.services import RunPlan, create_run

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_consolidation_runs_on_the_control_worker_and_its_workbook_downloads(roles, as_operator):
    make_samples(3, vary=True)
    worker = WorkerProcess("control").wait_ready()
    try:
        started = as_operator.post("/api/v1/consolidations")
        assert started.status_code == 202, started.content
        job = started.json()["job"]
        assert started.json()["started_by"] == "operator (token ops-script)"
        wait_until(lambda: as_operator.get(f"/api/v1/consolidations/{job}").json()["status"] in ("done", "failed"),
                   timeout=180, what=f"the consolidation; worker log:\n{worker.log.read_text()[-3000:]}")
    finally:
        worker.stop()
    assert as_operator.get(f"/api/v1/consolidations/{job}").json()["status"] == "done"
    download = as_operator.get(f"/api/v1/consolidations/{job}/download")
    assert download.status_code == 200
    book = openpyxl.load_workbook(io.BytesIO(b"".join(download.streaming_content)), read_only=True)
    assert book.sheetnames[0] == "Run" and "Summary" in book.sheetnames
    assert (settings.DATA_DIR / "runs" / DEFAULT_RUN / "consolidated" / f"api-{job}.xlsx").is_file()


def test_a_consolidation_names_its_run_and_an_unknown_or_malformed_run_starts_nothing(as_operator):
    make_samples(2)
    create_run(RunPlan(name="second"), actor="tester")
    started = as_operator.post("/api/v1/consolidations?run=second")
    assert started.status_code == 202 and started.json()["run"] == "second"
    assert as_operator.get(f"/api/v1/consolidations/{started.json()['job']}").json()["run"] == "second"
    unknown = as_operator.post("/api/v1/consolidations?run=third")
    assert unknown.status_code == 404 and unknown.json()["error"] == "unknown_run"
    malformed = as_operator.post("/api/v1/consolidations?run=../etc")
    assert malformed.status_code == 422 and "run" in malformed.json()["detail"]
    assert len(get_redis().keys("*api:consolidation:*")) == 1


def test_a_job_nobody_started_is_404_and_a_queued_one_cannot_be_downloaded(as_operator):
    unknown = as_operator.get(f"/api/v1/consolidations/{uuid.uuid4()}")
    assert unknown.status_code == 404 and unknown.json()["error"] == "unknown_job"
    job = as_operator.post("/api/v1/consolidations").json()["job"]  # no control worker runs: it stays queued
    assert as_operator.get(f"/api/v1/consolidations/{job}").json()["status"] == "queued"
    early = as_operator.get(f"/api/v1/consolidations/{job}/download")
    assert early.status_code == 409 and early.json()["error"] == "not_ready"
    assert as_operator.get("/api/v1/consolidations/not-a-uuid").status_code == 404


def test_consolidating_needs_its_permission(as_viewer):
    response = as_viewer.post("/api/v1/consolidations")
    assert response.status_code == 403 and "admin_ops.consolidate" in response.json()["detail"]
