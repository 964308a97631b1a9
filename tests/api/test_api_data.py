"""Corpora and archives through the API: the same services as the admin, the same row-level errors."""

from __future__ import annotations

import io
import tarfile

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from audit.models import AuditLog
from workers_app.models import Corpus, Sample

pytestmark = pytest.mark.django_db

GOOD = b"ID,Text\nP-1,I cannot sleep before exams.\nP-2,My family does not listen.\n"


def upload(client, content: bytes, name: str = "posts.csv", **fields):
    return client.post("/api/v1/corpora/import", {"file": SimpleUploadedFile(name, content), **fields})


def test_a_corpus_is_imported_by_upload_and_audited_with_the_token(as_operator):
    response = upload(as_operator, GOOD)
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["imported"] == 2 and body["corpus"]["file_name"] == "posts.csv"
    assert Sample.objects.count() == 2
    row = AuditLog.objects.get(action="import_corpus")
    assert row.actor == "operator (token ops-script)" and row.client_address == "127.0.0.1"
    again = upload(as_operator, GOOD)
    assert again.status_code == 200 and again.json()["already_imported"] is True
    assert [c["row_count"] for c in as_operator.get("/api/v1/corpora").json()["results"]] == [2]


def test_a_bad_file_is_422_with_each_row_problem_and_nothing_imported(as_operator, unchanged):
    response = upload(as_operator, b"ID,Text\nP-1,fine\n,no id here\nP-1,another text\n")
    assert response.status_code == 422
    body = response.json()
    assert body["error"] == "invalid_file" and len(body["problems"]) == 2
    assert body["problems"] == ["posts.csv, row 3, field 'id': empty id",
                                "posts.csv, row 4, field 'id': duplicate id 'P-1' (first at row 2)"]
    assert Corpus.objects.count() == 0
    unchanged()


@pytest.mark.parametrize(("fields", "field"), [
    ({}, "file"),
    ({"file": "not a file"}, "file"),
    ({"file": SimpleUploadedFile("a.csv", GOOD), "skip_invalid": "perhaps"}, "skip_invalid"),
    ({"file": SimpleUploadedFile("a.csv", GOOD), "id_column": "x" * 101}, "id_column"),
])
def test_a_bad_import_form_is_422_naming_the_field(as_operator, unchanged, fields, field):
    response = as_operator.post("/api/v1/corpora/import", fields)
    assert response.status_code == 422 and response.json()["error"] == f"invalid_{field}", response.content
    unchanged()


def test_an_empty_or_binary_upload_is_refused_with_the_reason(as_operator, unchanged):
    for content, name in ((b"", "empty.csv"), (b"\x00\x01PK\x03\x04garbage", "posts.xlsx"), (GOOD, "posts.exe")):
        response = upload(as_operator, content, name)
        assert response.status_code == 422 and response.json()["error"] == "invalid_file", (name, response.content)
        assert response.json().get("problems") or "empty" in response.json()["detail"]
    unchanged()


def test_importing_needs_add_corpus(as_viewer, unchanged):
    response = upload(as_viewer, GOOD)
    assert response.status_code == 403 and "workers_app.add_corpus" in response.json()["detail"]
    unchanged()


def test_an_archive_is_created_verified_listed_and_downloaded(as_operator):
    upload(as_operator, GOOD)
    made = as_operator.post_json("/api/v1/archives/create", {"name": "before-run"})
    assert made.status_code == 201, made.content
    assert made.json()["name"] == "before-run"
    verified = as_operator.post("/api/v1/archives/before-run/verify")
    assert verified.json() == {"ok": True, "problems": []}
    assert [a["name"] for a in as_operator.get("/api/v1/archives").json()["results"]] == ["before-run"]
    download = as_operator.get("/api/v1/archives/before-run/download")
    assert download.status_code == 200
    with tarfile.open(fileobj=io.BytesIO(b"".join(download.streaming_content)), mode="r:gz") as tar:
        assert "manifest.json" in tar.getnames()
    assert as_operator.post_json("/api/v1/archives/create", {"name": "before-run"}).status_code == 409


@pytest.mark.parametrize(("body", "status", "error"), [
    ({}, 422, "invalid_name"),
    ({"name": ""}, 422, "invalid_name"),
    ({"name": "../etc/passwd"}, 422, "invalid_name"),
    ({"name": "a" * 101}, 422, "invalid_name"),
    ({"name": 5}, 422, "invalid_name"),
    ({"name": "ok", "path": "/tmp"}, 422, "invalid_path"),
])
def test_a_bad_archive_name_is_refused(as_operator, unchanged, body, status, error):
    response = as_operator.post_json("/api/v1/archives/create", body)
    assert (response.status_code, response.json()["error"]) == (status, error), response.content
    unchanged()


@pytest.mark.parametrize("path", ["/api/v1/archives/nosuch/verify", "/api/v1/archives/..%2F..%2Fx/verify"])
def test_an_unknown_archive_is_404(as_operator, unchanged, path):
    response = as_operator.post(path)
    assert response.status_code == 404 and response.json()["error"] in ("unknown_archive", "not_found")
    unchanged()


def test_downloading_an_archive_needs_create_archive(as_viewer):
    response = as_viewer.get("/api/v1/archives/anything/download")
    assert response.status_code == 403 and "admin_ops.create_archive" in response.json()["detail"]


def test_review_lists_the_queue_by_risk_with_each_annotators_urgency_label(roles, as_operator):
    from django.utils import timezone

    from tests.helpers import make_samples
    from workers_app.models import Annotator, Domain, Outcome
    from workers_app.review.flags import sync_review_items
    from workers_app.runs.current import current_run

    urgency = Domain.objects.get(slug="urgency")
    given = {0: ["LEVEL_1", "LEVEL_1"], 1: ["LEVEL_4", "LEVEL_2"], 2: ["LEVEL_0", "LEVEL_2"]}
    for index, sample in enumerate(make_samples(3, vary=True)):
        for number, label in zip((1, 2), given[index], strict=True):
            Outcome.objects.create(run=current_run(), sample_id=sample, annotator=Annotator.objects.get(number=number), domain=urgency,
                                   status="ok", labels=[label], prompt_version=1, started_at=timezone.now())
    sync_review_items()  # these outcomes were written directly, not through the store that flags them
    body = as_operator.get("/api/v1/review").json()
    assert [(r["why"], r["risk"], r["urgency"]["1"], r["urgency"]["2"]) for r in body["results"]] == [
        ("LEVEL_4 given; labels 2 levels apart", 120, "LEVEL_4", "LEVEL_2"),
        ("labels 2 levels apart", 20, "LEVEL_0", "LEVEL_2")]
    assert body["count"] == 2 and body["results"][0]["urgency"]["3"] == ""
    assert body["results"][0]["status"] == "open"
