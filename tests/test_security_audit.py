"""Account events, grants, refusals and beat schedule edits are audited; the mirror file is private; flush empties
the audit log only for the test runner."""

from __future__ import annotations

import json
import stat

import pytest
from django.conf import settings
from django.contrib.auth.models import Group, Permission
from django.core.management import CommandError, call_command
from django.db import connection
from django.test import Client, override_settings
from django.test.utils import _TestState
from django_celery_beat.models import IntervalSchedule, PeriodicTask

from audit.actions import Action
from audit.maintenance import MAINTENANCE_TABLE
from audit.models import AuditLog
from audit.services import audited
from workers_app.beat_schedules import seed_schedules

pytestmark = pytest.mark.django_db

PASSWORD = "Right-Password-4711"
BEAT = "/admin/django_celery_beat/"
# The schedule pages carry an inline of the tasks using the schedule: a browser posts its management form.
NO_INLINE_CHANGES = {"periodictask_set-TOTAL_FORMS": "0", "periodictask_set-INITIAL_FORMS": "0"}


@pytest.fixture
def alice(django_user_model):
    return django_user_model.objects.create_user("alice", password=PASSWORD, is_staff=True)


@pytest.fixture
def root(client, django_user_model):
    client.force_login(django_user_model.objects.create_superuser("root", password="pw-root"))
    return client


def rows(action: str) -> list[AuditLog]:
    return list(AuditLog.objects.filter(action=action).order_by("id"))


def everything_audited() -> str:
    """Every audit row and the mirror file, to look for what must never be there."""
    mirror = settings.AUDIT_LOG_FILE.read_text() if settings.AUDIT_LOG_FILE.exists() else ""
    return json.dumps(list(AuditLog.objects.values()), default=str) + mirror


# --- logins and logouts ---------------------------------------------------------------------------------------------

def test_a_login_and_a_logout_are_audited_with_the_client_address(client, alice):
    assert client.post("/admin/login/", {"username": "alice", "password": PASSWORD}).status_code == 302
    assert client.post("/admin/logout/").status_code == 200

    assert [(row.action, row.actor, row.target, row.result, row.client_address)
            for row in AuditLog.objects.order_by("id")] == [
        ("login", "alice", "user alice", "ok", "127.0.0.1"), ("logout", "alice", "user alice", "ok", "127.0.0.1")]
    assert PASSWORD not in everything_audited()


def test_a_successful_login_clears_the_count_of_failures(client, alice):
    for _ in range(4):
        client.post("/admin/login/", {"username": "alice", "password": "wrong"})
    assert client.post("/admin/login/", {"username": "alice", "password": PASSWORD}).status_code == 302
    client.post("/admin/logout/")
    for _ in range(4):
        client.post("/admin/login/", {"username": "alice", "password": "wrong"})

    assert client.post("/admin/login/", {"username": "alice", "password": PASSWORD}).status_code == 302
    assert len(rows(Action.LOGIN_FAILED)) == 8 and len(rows(Action.LOGIN)) == 2


def test_the_lockout_is_per_username_and_address(client, alice, django_user_model):
    django_user_model.objects.create_user("bob", password=PASSWORD, is_staff=True)
    for _ in range(5):
        client.post("/admin/login/", {"username": "alice", "password": "wrong"})

    assert client.post("/admin/login/", {"username": "alice", "password": PASSWORD}).status_code == 429
    assert client.post("/admin/login/", {"username": "bob", "password": PASSWORD}).status_code == 302
    other_address = Client(REMOTE_ADDR="192.0.2.7")
    assert other_address.post("/admin/login/", {"username": "alice", "password": PASSWORD}).status_code == 302


# --- users, groups and permissions ----------------------------------------------------------------------------------

def test_adding_a_user_in_the_admin_names_the_fields_but_never_the_password(root, django_user_model):
    secret = "Brand-New-Secret-9931"
    response = root.post("/admin/auth/user/add/", {"username": "bob", "usable_password": "true",
                                                    "password1": secret, "password2": secret})

    assert response.status_code == 302
    [row] = rows(Action.USER_CHANGE)
    assert (row.actor, row.target, row.result, row.parameters["edit"]) == ("root", "user bob", "ok", "add")
    assert sorted(row.parameters["fields"]) == ["password", "username"]
    bob = django_user_model.objects.get(username="bob")
    assert secret not in everything_audited() and bob.password not in everything_audited()


def test_changing_a_password_in_the_admin_is_audited_without_the_password(root, alice):
    secret = "Changed-Secret-5521"
    response = root.post(f"/admin/auth/user/{alice.pk}/password/",
                         {"password1": secret, "password2": secret, "usable_password": "true"})

    assert response.status_code == 302
    alice.refresh_from_db()
    assert alice.check_password(secret)
    [row] = rows(Action.USER_CHANGE)
    assert (row.actor, row.target, row.parameters) == ("root", "user alice", {"edit": "password",
                                                                             "fields": ["password"]})
    assert secret not in everything_audited() and alice.password not in everything_audited()


def test_changing_and_deleting_users_and_groups_in_the_admin_is_audited(root, alice):
    view_log = Permission.objects.get(codename="view_auditlog")
    assert root.post("/admin/auth/group/add/", {"name": "auditors", "permissions": [view_log.pk]}).status_code == 302
    auditors = Group.objects.get(name="auditors")
    # As a browser sends it: date_joined (default timezone.now) comes with its hidden initial value.
    joined = {"date_joined_0": f"{alice.date_joined:%Y-%m-%d}", "date_joined_1": f"{alice.date_joined:%H:%M:%S}"}
    data = {"username": "alice", "is_active": "on", "is_staff": "on", "groups": [auditors.pk], **joined,
            **{f"initial-{name}": value for name, value in joined.items()}}
    assert root.post(f"/admin/auth/user/{alice.pk}/change/", data).status_code == 302
    assert root.post(f"/admin/auth/group/{auditors.pk}/delete/", {"post": "yes"}).status_code == 302

    assert [(row.action, row.target, row.parameters) for row in AuditLog.objects.order_by("id")
            if row.action != Action.LOGIN] == [
        ("group_change", "group auditors", {"edit": "add", "fields": ["name", "permissions"]}),
        ("permission_change", "group auditors", {"relation": "group.permissions", "added": ["audit.view_auditlog"]}),
        ("user_change", "user alice", {"edit": "change", "fields": ["groups"]}),
        ("permission_change", "user alice", {"relation": "user.groups", "added": ["auditors"]}),
        ("group_change", "group auditors", {"edit": "delete", "fields": []}),
    ]
    assert {row.actor for row in AuditLog.objects.exclude(action=Action.LOGIN)} == {"root"}


def test_grants_made_outside_the_admin_are_audited_as_the_system(alice):
    auditors = Group.objects.create(name="auditors")
    view_log = Permission.objects.get(codename="view_auditlog")
    pause = Permission.objects.get(codename="pause_worker")

    auditors.permissions.add(view_log, pause)
    alice.user_permissions.add(pause)
    auditors.user_set.add(alice)
    auditors.permissions.remove(pause)
    alice.groups.clear()
    alice.groups.clear()  # nothing left to remove: no row

    assert [(row.actor, row.target, row.parameters) for row in rows(Action.PERMISSION_CHANGE)] == [
        ("system", "group auditors", {"relation": "group.permissions",
                                      "added": ["audit.view_auditlog", "workers_app.pause_worker"]}),
        ("system", "user alice", {"relation": "user.user_permissions", "added": ["workers_app.pause_worker"]}),
        ("system", "group auditors", {"relation": "user.groups", "added": ["alice"]}),
        ("system", "group auditors", {"relation": "group.permissions", "removed": ["workers_app.pause_worker"]}),
        ("system", "user alice", {"relation": "user.groups", "removed": ["auditors"]}),
    ]


# --- refusals -------------------------------------------------------------------------------------------------------

def test_a_staff_user_without_the_model_permission_gets_403_and_a_refused_row(client, alice):
    client.force_login(alice)

    assert client.get("/admin/auth/user/").status_code == 403

    [row] = rows(Action.REFUSED)
    assert (row.actor, row.result, row.target, row.parameters, row.detail) == (
        "alice", "failed", "/admin/auth/user/", {"path": "/admin/auth/user/", "method": "GET"},
        {"error": "GET /admin/auth/user/: permission denied"})


def test_a_403_answered_without_an_exception_is_audited_too(alice):
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(alice)

    assert browser.post("/admin/logout/").status_code == 403  # no CSRF token

    [row] = rows(Action.REFUSED)
    assert (row.actor, row.parameters, row.detail) == ("alice", {"path": "/admin/logout/", "method": "POST"},
                                                       {"error": "POST /admin/logout/: answered 403 Forbidden"})


# --- beat schedules -------------------------------------------------------------------------------------------------

def test_a_superuser_edits_schedules_and_every_edit_is_audited(root):
    seed_schedules()
    hourly = IntervalSchedule.objects.get(every=1, period="hours")
    task = {"name": "archive hourly", "task": "admin_ops.scheduled_archive", "interval": hourly.pk, "args": "[]",
            "kwargs": "{}", "headers": "{}", "enabled": "on"}

    assert root.post(f"{BEAT}periodictask/add/", task).status_code == 302
    assert root.post(f"{BEAT}intervalschedule/add/", {"every": "7", "period": "seconds",
                                                        **NO_INLINE_CHANGES}).status_code == 302
    added = PeriodicTask.objects.get(name="archive hourly")
    assert root.post(f"{BEAT}periodictask/", {"action": "disable_tasks", "_selected_action": [added.pk]}
                     ).status_code == 302

    assert [(row.target, row.parameters) for row in rows(Action.SCHEDULE_CHANGE)] == [
        (f"periodictask {added.name}: every hour", {"edit": "add", "task": "admin_ops.scheduled_archive",
                                                    "fields": ["name", "task", "interval"]}),
        ("intervalschedule every 7 seconds", {"edit": "add", "tasks": [], "fields": ["every", "period"]}),
        (f"periodictask {added.name}: every hour", {"edit": "disable_tasks"}),
    ]
    added.refresh_from_db()
    assert not added.enabled


def test_staff_with_the_view_permission_see_the_schedules_but_may_not_act_on_them(client, django_user_model):
    seed_schedules()
    viewer = django_user_model.objects.create_user("viewer", password="pw", is_staff=True)
    viewer.user_permissions.add(*Permission.objects.filter(codename__in=["view_periodictask", "change_periodictask"]))
    client.force_login(viewer)
    sweep = PeriodicTask.objects.get(task="workers_app.health_sweep")

    page = client.get(f"{BEAT}periodictask/")
    answer = client.post(f"{BEAT}periodictask/", {"action": "disable_tasks", "_selected_action": [sweep.pk]})

    assert page.status_code == 200 and b"health sweep" in page.content
    assert b"periodictask/add/" not in page.content and b'name="action"' not in page.content
    assert answer.status_code == 403 and "disable_tasks" in rows(Action.REFUSED)[0].detail["error"]
    sweep.refresh_from_db()
    assert sweep.enabled and not rows(Action.SCHEDULE_CHANGE)


# --- the mirror file and flush --------------------------------------------------------------------------------------

# Committed: the audit mirror is written when the transaction commits.
@pytest.mark.django_db(transaction=True)
def test_the_mirror_file_is_created_readable_by_its_owner_only(tmp_path):
    mirror = tmp_path / "admin_audit.log"
    with override_settings(AUDIT_LOG_FILE=mirror), audited(Action.CONSOLIDATE, actor="alice"):
        pass

    assert stat.S_IMODE(mirror.stat().st_mode) == 0o600
    assert json.loads(mirror.read_text())["action"] == "consolidate"


def test_flush_refuses_outside_the_test_runner_and_deletes_nothing(monkeypatch, alice, django_user_model):
    with audited(Action.CONSOLIDATE, actor="alice"):
        pass
    monkeypatch.delattr(_TestState, "saved_data")  # as in a deployment: no test environment

    with pytest.raises(CommandError, match="the audit log, which is append-only"):
        call_command("flush", interactive=False)

    assert AuditLog.objects.count() == 1 and django_user_model.objects.filter(username="alice").exists()


def test_flush_empties_the_audit_log_for_the_test_runner_and_closes_its_window():
    with audited(Action.CONSOLIDATE, actor="alice"):
        pass

    call_command("flush", interactive=False)

    assert not AuditLog.objects.exists()
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT count(*) FROM {MAINTENANCE_TABLE}")
        assert cursor.fetchone() == (0,)
