"""Hostile requests to the Operations pages and hostile text in the files they write: state changes answer POST
with a CSRF token only, missing archives are 404s with a message, and CSV cells never become formulas."""

from __future__ import annotations

import csv
import io
import json

import pytest
from django.conf import settings
from django.core.management import call_command
from django.test import Client

from admin_ops.models import Archive
from admin_ops.services.archive import create_archive
from admin_ops.services.consolidate import consolidate
from audit.actions import Action
from audit.models import AuditLog
from workers_app.engine.annotate import annotate_sample
from workers_app.engine.keys import WorkerKey
from workers_app.fleet.rows import ensure_worker_rows
from workers_app.models import Annotator, Corpus, Domain, MalformedAttempt, Sample
from workers_app.runs.current import current_run

pytestmark = pytest.mark.django_db

BASE = "/admin/admin_ops/archive/"
OPERATIONS = [Action.RESET_DATA, Action.CREATE_ARCHIVE, Action.IMPORT_STATE, Action.CONSOLIDATE]
FORMULAS = ["=HYPERLINK(\"http://evil.example\",\"open\")", "+1+1", "-2+3", "@SUM(A1:A2)", "\t=1+1", "\r=1+1"]


@pytest.fixture
def root(catalogue, client, staff) -> Client:
    ensure_worker_rows()  # before the fingerprint: the operations read the fleet
    client.force_login(staff)
    return client


def upload(data: bytes) -> io.BytesIO:
    handle = io.BytesIO(data)
    handle.name = "state.json"
    return handle


@pytest.mark.parametrize("route", ["operations/reset/", "operations/archive/", "operations/import-state/",
                                   "operations/consolidate/"])
def test_it_refuses_a_get_on_a_view_that_changes_state(root, unchanged, route):
    response = root.get(BASE + route, {"reset-factory": "on", "confirmed": "yes", "archive-name": "by-get"})

    assert response.status_code == 405 and response["Allow"] == "POST"
    unchanged()
    assert not AuditLog.objects.filter(action__in=OPERATIONS).exists()


@pytest.fixture
def browser(catalogue, staff) -> Client:
    """A client that, like a browser, must send the CSRF token."""
    client = Client(enforce_csrf_checks=True)
    client.force_login(staff)
    return client


def test_it_refuses_a_post_without_the_csrf_token(browser, unchanged):
    response = browser.post(BASE + "operations/archive/", {"archive-name": "forged"})

    assert response.status_code == 403 and b"CSRF" in response.content
    unchanged()
    assert not Archive.objects.exists()


def test_it_answers_404_for_an_archive_that_does_not_exist(root, unchanged):
    assert root.get(BASE + "987654/download/").status_code == 404
    unchanged()


@pytest.fixture
def vanished(root) -> Archive:
    archive = create_archive("vanished", actor="test")
    (settings.ARCHIVES_DIR / archive.file_name).unlink()
    return archive


def test_it_answers_404_with_a_message_when_the_archive_file_is_gone(root, vanished, unchanged):
    response = root.get(BASE + f"{vanished.pk}/download/")

    assert response.status_code == 404
    assert "The file <code>vanished.tar.gz</code> of archive <strong>vanished</strong> is missing" \
        in response.content.decode()
    unchanged()


@pytest.mark.parametrize(("data", "message"), [
    (b"x" * (6 * 1024 * 1024), "uploaded file: larger than the limit of 5,242,880 bytes"),
    (b"\xff\xfe\x00binary", "uploaded file: not UTF-8 text (byte 0)"),
    (json.dumps({"format": "annotation-fleet-state", "version": 1, "catalogue": {"domains": [], "annotators": [
        {"number": 0}]}, "workers": []}).encode(), "catalogue.annotators[0]: missing field"),
])
def test_it_shows_why_an_uploaded_state_file_is_refused(root, unchanged, data, message):
    response = root.post(BASE + "operations/import-state/", {"import-file": upload(data)}, follow=True)

    assert message in response.content.decode()
    unchanged()
    assert not AuditLog.objects.filter(action=Action.IMPORT_STATE).exists()  # only the check ran, not an import


def sample_with_id(external_id: str) -> int:
    corpus = Corpus.objects.get_or_create(file_name="hostile.csv", sha256="h" * 64, imported_by="test")[0]
    return Sample.objects.create(external_id=external_id, text=f"I cannot sleep ({len(external_id)})", corpus=corpus,
                                 source_row=2).pk


def test_the_consolidated_csv_never_holds_a_formula_and_the_jsonl_keeps_the_text(catalogue, tmp_path):
    for formula in FORMULAS:
        annotate_sample(sample_with_id(formula), WorkerKey(1, "urgency"), worker="w")

    report = consolidate(tmp_path / "out.xlsx", actor="test")

    with report.csv_path.open(newline="", encoding="utf-8") as handle:
        ids = [row["sample_id"] for row in csv.DictReader(handle) if row["domain"] == "urgency"]
    assert ids == [f"'{formula}" for formula in FORMULAS]
    with report.jsonl_path.open(encoding="utf-8") as handle:
        records = [json.loads(line) for line in handle]
    assert [r["sample_id"] for r in records if r["domain"] == "urgency"] == FORMULAS


def test_the_malformed_answers_csv_never_holds_a_formula(catalogue, tmp_path):
    for attempt, formula in enumerate(FORMULAS, start=1):
        MalformedAttempt.objects.create(run=current_run(), sample_id=sample_with_id(f"S-{attempt}"),
                                        annotator=Annotator.objects.get(
            number=1), domain=Domain.objects.get(slug="urgency"), attempt=attempt, reason="no_marker",
            raw_answer=formula, reason_detail=formula, prompt_version=1)

    call_command("export_malformed", str(tmp_path / "malformed.csv"))

    with (tmp_path / "malformed.csv").open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert [(r["raw_answer"], r["reason_detail"]) for r in rows] == [(f"'{f}", f"'{f}") for f in FORMULAS]
    assert [r["attempt"] for r in rows] == [str(n) for n in range(1, len(FORMULAS) + 1)]


@pytest.fixture
def clerk(catalogue, client, django_user_model) -> Client:
    """A staff user without any permission of the operations."""
    client.force_login(django_user_model.objects.create_user("clerk", password="pw", is_staff=True))
    return client


def test_it_refuses_a_reset_form_with_errors_from_a_user_without_the_permission(clerk, unchanged):
    response = clerk.post(BASE + "operations/reset/", {"reset-annotator": "not a number", "confirmed": "yes"})

    assert response.status_code == 403
    unchanged()
