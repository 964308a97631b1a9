"""The workspace's jobs run by a real control worker: a corpus checked, refused and imported with its progress, an
archive and a consolidation of a run, each followed on its job page until its result is there."""

from __future__ import annotations

import io

import pytest
from django.conf import settings

from admin_ops.models import Archive
from api.jobs import job_status, start_archive
from tests.browser.conftest import make_staff
from tests.helpers import make_samples, store_outcome, wait_until
from tests.worker_processes import WorkerProcess
from workers_app.models import Corpus, Sample
from workers_app.runs.current import current_run

pytestmark = pytest.mark.django_db(transaction=True)
ROWS = 3000


@pytest.fixture
def control():
    worker = WorkerProcess("control").wait_ready()
    yield worker
    worker.stop()


def finished(kind: str, job: str, worker: WorkerProcess) -> dict:
    wait_until(lambda: job_status(kind, job)["status"] in ("done", "failed"), timeout=120,
               what=f"the {kind} job", explain=lambda: worker.log.read_text()[-3000:])
    return job_status(kind, job)


def upload(name: str, data: str) -> io.BytesIO:
    handle = io.BytesIO(data.encode())
    handle.name = name
    return handle


def test_a_corpus_is_checked_refused_with_its_bad_row_then_imported_with_its_progress(client, catalogue, control):
    client.force_login(make_staff("ida", "workers_app.view_corpus", "workers_app.add_corpus"))
    rows = "".join(f"P{i},post number {i}\n" if i != 1234 else f"P{i},\n" for i in range(ROWS))
    token = client.post("/setup/corpora/", {"file": upload("big.csv", "ID,Text\n" + rows)}).url.split("/")[-2]

    checked = client.post(f"/setup/corpora/{token}/start", {"action": "check"}).url.split("/")[3]
    result = finished("import", checked, control)
    assert result["result"]["problems"] == ["big.csv, row 1236, field 'text': empty text"]
    assert (result["result"]["rows"], result["result"]["new"]) == (ROWS, ROWS - 1)
    assert result["progress"] == {"done": ROWS, "total": ROWS, "stage": "checking every row"}
    assert Corpus.objects.count() == 0

    refused = client.post(f"/setup/corpora/{token}/start", {"action": "import"}).url.split("/")[3]
    assert finished("import", refused, control)["result"] == {
        "rejected": True, "problems": ["big.csv, row 1236, field 'text': empty text"], "problem_count": 1}
    page = client.get(f"/jobs/import/{refused}/").content.decode()
    assert "1 problem; nothing was imported" in page and "row 1236" in page
    assert Sample.objects.count() == 0

    valid = client.post(f"/setup/corpora/{token}/start", {"action": "import_valid"}).url.split("/")[3]
    imported = finished("import", valid, control)["result"]
    assert imported["imported"] == ROWS - 1 and imported["problem_count"] == 1
    assert Sample.objects.count() == ROWS - 1 and Corpus.objects.get().file_name == "big.csv"
    assert not (settings.DATA_DIR / "uploads" / token).exists()  # an imported upload is not kept
    assert "See the imported posts" in client.get(f"/jobs/import/{valid}/").content.decode()


def test_a_run_is_archived_and_consolidated_and_their_pages_offer_the_files(client, catalogue, control):
    run = current_run()
    for pk in make_samples(3, vary=True):
        store_outcome(run, pk, 1, "urgency", ["LEVEL_2"])
        store_outcome(run, pk, 2, "urgency", ["LEVEL_2"])
    client.force_login(make_staff("cora", "admin_ops.consolidate", "admin_ops.create_archive"))

    archived = client.post("/jobs/archive", {"name": "default-snapshot", "run": "default"}).url.split("/")[3]
    result = finished("archive", archived, control)
    assert result["status"] == "done", result["error"]
    assert result["progress"]["stage"] == "done" and Archive.objects.get(name="default-snapshot").size > 0
    assert 'href="/files/archives/default-snapshot"' in client.get(f"/jobs/archive/{archived}/").content.decode()

    consolidated = client.post("/jobs/consolidate", {"run": "default"}).url.split("/")[3]
    result = finished("consolidation", consolidated, control)
    assert result["status"] == "done", result["error"]
    workbook = f"api-{consolidated}.xlsx"
    page = client.get(f"/jobs/consolidation/{consolidated}/").content.decode()
    assert f'href="/files/runs/default/consolidated/{workbook}"' in page
    assert client.get(f"/files/runs/default/consolidated/{workbook}").status_code == 200


def test_a_failed_job_says_why(client, catalogue, control):
    """An archive name taken between the form's check and the job: the job fails and its page names the cause."""
    client.force_login(make_staff("cora", "admin_ops.create_archive"))
    Archive.objects.create(name="taken", file_name="taken.tar.gz", sha256="0" * 64, size=1, created_by="x")
    job = start_archive("taken", None, actor="cora")
    result = finished("archive", job, control)
    assert result["status"] == "failed" and "exists already" in result["error"]
    assert "The job failed: an archive named" in client.get(f"/jobs/archive/{job}/").content.decode()
