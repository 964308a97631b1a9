"""Every operation on data refuses a user without its permission, and destructive ones confirm first."""

from __future__ import annotations

import io
import json

import pytest
from django.contrib.auth.models import Permission

from admin_ops.models import Archive
from admin_ops.services.archive import create_archive
from audit.models import AuditLog
from tests.conftest import make_samples
from workers_app.engine.annotate import annotate_sample
from workers_app.engine.keys import WorkerKey
from workers_app.models import Outcome

pytestmark = pytest.mark.django_db(transaction=True)

BASE = "/admin/admin_ops/archive/"


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
    assert not Archive.objects.exists() and not AuditLog.objects.filter(result="ok").exclude(action="seed_defaults").exists()


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


def test_a_domain_reset_shows_the_counts_and_deletes_only_after_confirmation(client, clerk):
    for sample in make_samples(4, vary=True):
        annotate_sample(sample, WorkerKey(1, "urgency"), worker="w")
    grant(clerk, "reset_data")
    client.force_login(clerk)
    page = client.post(BASE + "operations/reset/", {"reset-domain": "urgency", "reset-no_backup": "on"})
    assert "5 worker(s), 4 outcomes" in page.content.decode() and Outcome.objects.count() == 4
    client.post(BASE + "operations/reset/", {"reset-domain": "urgency", "reset-no_backup": "on", "confirmed": "yes"})
    assert Outcome.objects.count() == 0


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
