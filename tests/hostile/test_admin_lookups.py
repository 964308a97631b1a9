"""The admin's lists filter only by what each page offers: a lookup from the query string that is not one of the
page's own filters (a regular expression the database would run, a prefix of an encrypted key) is refused with 400
and an audit row, on every registered admin page at once; every filter a page does offer still works.

Also: an admin action a user may not run is refused with 403 and an audit row, not a silent page reload.
"""

from __future__ import annotations

import re
import time
from html import unescape

import pytest
from django.contrib import admin
from django.contrib.auth.models import Group
from django.core.management import call_command
from django.db import models
from django.test import Client, RequestFactory

from audit.models import AuditLog
from tests.helpers import make_samples
from workers_app.engine.api_keys import set_api_key
from workers_app.fleet.rows import ensure_worker_rows
from workers_app.models import Annotator, Worker

pytestmark = pytest.mark.django_db

# Fields that hold a secret, or what proves one: no lookup may ever reach them.
SECRET_FIELDS = {("workers_app", "annotator", "api_key_encrypted"), ("api", "apitoken", "digest"),
                 ("auth", "user", "password"), ("workers_app", "alertchannel", "target")}


def registered() -> list[tuple[type[models.Model], admin.ModelAdmin]]:
    return sorted(admin.site._registry.items(), key=lambda item: item[0]._meta.label)


def changelist(model: type[models.Model]) -> str:
    return f"/admin/{model._meta.app_label}/{model._meta.model_name}/"


@pytest.fixture
def root_user(catalogue, django_user_model):
    return django_user_model.objects.create_superuser("root", password="pw-for-tests")


@pytest.fixture
def root(root_user) -> Client:
    ensure_worker_rows()
    make_samples(3)
    client = Client()
    client.force_login(root_user)
    return client


def offered(model_admin: admin.ModelAdmin, user) -> set[str]:
    """The field paths a page filters by for this user (its list filters and date drill-down)."""
    request = RequestFactory().get("/")
    request.user = user
    paths = {f if isinstance(f, str) else f[0] for f in model_admin.get_list_filter(request) if not callable(f)}
    return {str(path) for path in paths} | ({model_admin.date_hierarchy} if model_admin.date_hierarchy else set())


@pytest.fixture
def viewer(catalogue, django_user_model) -> Client:
    call_command("seed_defaults")
    user = django_user_model.objects.create_user("vera", password="pw-for-tests", is_staff=True)
    user.groups.add(Group.objects.get(name="viewer"))
    ensure_worker_rows()
    client = Client()
    client.force_login(user)
    return client


def test_the_walk_covers_the_apps_pages():
    labels = {model._meta.label for model, _ in registered()}
    assert {"workers_app.Sample", "workers_app.Annotator", "audit.AuditLog", "api.ApiToken", "auth.User",
            "django_celery_beat.PeriodicTask"} <= labels


@pytest.mark.parametrize("lookup", ["regex", "iregex", "startswith", "contains", "gt"])
def test_every_admin_list_refuses_a_lookup_on_a_field_it_does_not_filter_by(root, root_user, lookup):
    refused = []
    for model, model_admin in registered():
        if root.get(changelist(model)).status_code != 200:
            continue  # a page without a list (or not for this user)
        filtered = offered(model_admin, root_user)
        for field in model._meta.concrete_fields:
            if field.name in filtered or field.attname in filtered:
                continue
            path = changelist(model)
            response = root.get(path, {f"{field.name}__{lookup}": "(.|.){0,24}!"})
            if response.status_code != 400:
                refused.append((path, field.name, response.status_code))
    assert refused == [], "lookups that were not refused"


def test_a_secret_field_is_never_a_filter_search_or_column(root_user):
    for model, model_admin in registered():
        for app, model_name, name in SECRET_FIELDS:
            if (model._meta.app_label, model._meta.model_name) != (app, model_name):
                continue
            used = [*map(str, model_admin.list_display), *map(str, model_admin.search_fields),
                    *offered(model_admin, root_user)]
            assert not any(entry.lstrip("^=@") == name or entry.startswith(f"{name}__") for entry in used), \
                (model, name)


@pytest.mark.parametrize("lookup", ["regex", "startswith", "exact", "isnull", "in"])
@pytest.mark.parametrize(("app", "model_name", "field"), sorted(SECRET_FIELDS))
def test_no_lookup_reaches_a_secret_field(root, app, model_name, field, lookup):
    response = root.get(f"/admin/{app}/{model_name}/", {f"{field}__{lookup}": "gAAAA"})
    assert response.status_code == 400


def test_a_viewer_cannot_read_an_encrypted_key_one_character_at_a_time(viewer):
    set_api_key(Annotator.objects.get(number=2), "sk-test-0123456789abcdef", actor="root")
    stored = Annotator.objects.get(number=2).api_key_encrypted

    answers = {viewer.get("/admin/workers_app/annotator/", {"api_key_encrypted__startswith": stored[:n]}).status_code
               for n in range(1, 8)}

    assert answers == {400}
    row = AuditLog.objects.filter(action="refused", actor="vera").first()
    assert row is not None and "api_key_encrypted__startswith" in row.detail["error"]


def test_a_catastrophic_regular_expression_is_refused_before_the_database_runs_it(root):
    make_samples(50, "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", vary=True)
    started = time.monotonic()
    response = root.get("/admin/workers_app/sample/", {"text__regex": "(.|.){0,24}!"})
    assert response.status_code == 400 and time.monotonic() - started < 2


def test_every_filter_an_admin_list_offers_still_works(root):
    broken, followed = [], 0
    for model, _ in registered():
        page = root.get(changelist(model))
        if page.status_code != 200:
            continue
        filters = page.content.decode().partition('id="changelist-filter"')[2]
        for link in {unescape(href) for href in re.findall(r'href="(\?[^"]*)"', filters)}:
            followed += 1
            response = root.get(changelist(model) + link)
            if response.status_code != 200:
                broken.append((model._meta.label, link, response.status_code))
    assert broken == [] and followed > 50, followed


def test_date_drilldown_and_search_still_work(root):
    assert root.get("/admin/audit/auditlog/", {"at__year": "2026"}).status_code == 200
    assert root.get("/admin/workers_app/sample/", {"q": "anxious"}).status_code == 200


def test_a_viewer_posting_a_worker_action_is_refused_with_403_and_an_audit_row(viewer, unchanged):
    workers = list(Worker.objects.values_list("pk", flat=True)[:2])

    response = viewer.post("/admin/workers_app/worker/", {"action": "pause_workers", "index": "0",
                                                          "_selected_action": workers})

    assert response.status_code == 403
    row = AuditLog.objects.get(action="refused", actor="vera")
    assert "pause_workers" in row.detail["error"]
    assert not AuditLog.objects.filter(action="pause_worker").exists()
    unchanged()


def test_an_action_that_does_not_exist_is_still_the_admins_own_message(root):
    response = root.post("/admin/workers_app/worker/", {"action": "no_such_action", "index": "0",
                                                        "_selected_action": [1]})
    assert response.status_code == 302  # back to the list, saying no action was selected
    assert not AuditLog.objects.filter(action="refused").exists()
