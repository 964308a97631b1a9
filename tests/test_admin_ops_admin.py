"""Every operation on data refuses a user without its permission, and destructive ones confirm first."""

from __future__ import annotations

import io
import json

import pytest
from django.conf import settings
from django.contrib.auth.models import Permission

from admin_ops.models import Archive
from admin_ops.services.archive import create_archive
from admin_ops.services.state import export_state
from audit.actions import Action
from audit.models import AuditLog
from tests.helpers import make_samples
from workers_app.engine.annotate import annotate_sample
from workers_app.engine.keys import WorkerKey
from workers_app.models import Annotator, Outcome

pytestmark = pytest.mark.django_db

BASE = "/admin/admin_ops/archive/"
OPERATIONS = [Action.RESET_DATA, Action.CREATE_ARCHIVE, Action.IMPORT_STATE, Action.CONSOLIDATE]


@pytest.fixture
def clerk(django_user_model, catalogue):
    user = django_user_model.objects.create_user("clerk", password="pw", is_staff=True)
    user.user_permissions.add(Permission.objects.get(codename="view_archive"))
    return user


def grant(user, codename: str) -> None:
    user.user_permissions.add(Permission.objects.get(codename=codename, content_type__app_label="admin_ops"))


def state_upload() -> io.BytesIO:
    handle = io.BytesIO(json.dumps({"format": "annotation-fleet-state", "version": 1}).encode())
    handle.name = "state.json"
    return handle


REFUSED = [
    ("operations/archive/", {"archive-name": "x"}, "create_archive"),
    ("operations/reset/", {"reset-domain": "urgency"}, "reset_data"),
    ("operations/reset/", {"reset-factory": "on"}, "factory_reset"),
    ("operations/consolidate/", {}, "consolidate"),
]


@pytest.mark.parametrize(("route", "data", "permission"), REFUSED)
def test_an_operation_is_refused_without_its_permission(client, clerk, route, data, permission):
    client.force_login(clerk)
    assert client.post(BASE + route, data).status_code == 403
    assert not Archive.objects.exists()
    assert not AuditLog.objects.filter(action__in=OPERATIONS, result="ok").exists()


def test_state_export_and_import_need_their_permissions(client, clerk):
    client.force_login(clerk)
    assert client.get(BASE + "operations/export-state/").status_code == 403
    assert client.post(BASE + "operations/import-state/", {"import-file": state_upload()}).status_code == 403
    grant(clerk, "export_state")
    response = client.get(BASE + "operations/export-state/")
    assert response.status_code == 200 and json.loads(response.content)["format"] == "annotation-fleet-state"


def test_archive_actions_need_their_permissions(client, clerk):
    archive = create_archive("for-actions", actor="test")
    client.force_login(clerk)
    client.post(BASE, {"action": "verify", "_selected_action": [archive.pk]})
    assert Archive.objects.get().verified_at is None
    grant(clerk, "verify_archive")
    client.post(BASE, {"action": "verify", "_selected_action": [archive.pk]})
    assert Archive.objects.get().verify_ok is True


# Committed: a reset retires the workers from several threads (run_bulk), each with a connection of its own.
@pytest.mark.django_db(transaction=True)
def test_a_domain_reset_shows_the_counts_and_deletes_only_after_confirmation(client, clerk):
    for sample in make_samples(4, vary=True):
        annotate_sample(sample, WorkerKey(1, "urgency"), worker="w")
    grant(clerk, "reset_data")
    client.force_login(clerk)
    page = client.post(BASE + "operations/reset/", {"reset-domain": "urgency", "reset-no_backup": "on"})
    assert "5 worker(s), 4 outcomes" in page.content.decode() and Outcome.objects.count() == 4
    client.post(BASE + "operations/reset/", {"reset-domain": "urgency", "reset-no_backup": "on", "confirmed": "yes"})
    assert Outcome.objects.count() == 0


# Committed: a reset retires the workers from several threads (run_bulk), each with a connection of its own.
@pytest.mark.django_db(transaction=True)
def test_a_factory_reset_needs_the_project_name_typed(client, django_user_model, catalogue):
    root = django_user_model.objects.create_superuser("root", password="pw")
    for sample in make_samples(2, vary=True):
        annotate_sample(sample, WorkerKey(1, "urgency"), worker="w")
    client.force_login(root)
    data = {"reset-factory": "on", "reset-no_backup": "on", "confirmed": "yes"}
    client.post(BASE + "operations/reset/", {**data, "reset-confirm_name": "wrong"})
    assert Outcome.objects.count() == 2
    client.post(BASE + "operations/reset/", {**data, "reset-confirm_name": "annotation-fleet"})
    assert Outcome.objects.count() == 0


def test_the_operations_page_shows_only_what_the_user_may_do(client, clerk):
    client.force_login(clerk)
    page = client.get(BASE + "operations/").content.decode()
    assert "Write the archive" not in page and "Show what would be deleted" not in page
    grant(clerk, "create_archive")
    assert "Write the archive" in client.get(BASE + "operations/").content.decode()


def test_an_import_shows_the_differences_then_applies_them_once_confirmed(client, clerk):
    document = json.loads(export_state(actor="test", target="memory"))
    document["catalogue"]["annotators"][1]["model"] = "imported-model"
    grant(clerk, "import_state")
    client.force_login(clerk)
    handle = io.BytesIO(json.dumps(document).encode())
    handle.name = "state.json"

    page = client.post(BASE + "operations/import-state/", {"import-file": handle}).content.decode()

    assert "annotator 2.model: &#x27;builtin-lexicon-v1&#x27; -&gt; &#x27;imported-model&#x27;" in page
    assert Annotator.objects.get(number=2).model == "builtin-lexicon-v1"
    client.post(BASE + "operations/import-state/", {"confirmed": "yes"})
    assert Annotator.objects.get(number=2).model == "imported-model"


def test_consolidation_answers_a_post_with_the_workbook(client, clerk):
    grant(clerk, "consolidate")
    client.force_login(clerk)

    response = client.post(BASE + "operations/consolidate/")

    assert response.status_code == 200
    assert response["Content-Disposition"].startswith('attachment; filename="consolidated-')
    assert b"".join(response.streaming_content).startswith(b"PK")


def test_an_archive_downloads_for_a_user_who_may_write_archives(client, clerk):
    archive = create_archive("to-download", actor="test")
    client.force_login(clerk)
    assert client.get(BASE + f"{archive.pk}/download/").status_code == 403
    grant(clerk, "create_archive")

    response = client.get(BASE + f"{archive.pk}/download/")

    assert response.status_code == 200
    assert b"".join(response.streaming_content) == (settings.ARCHIVES_DIR / archive.file_name).read_bytes()
