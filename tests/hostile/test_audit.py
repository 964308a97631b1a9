"""Hostile attempts on the audit trail and on what it guards: tampering with the log (through the ORM or raw SQL),
guessing passwords, editing beat schedules without being a superuser, schedules that run too often, an operation
refused for want of its permission, and a mirror file that cannot be written."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from django.conf import settings
from django.contrib.auth.models import Permission
from django.db import IntegrityError, connection, transaction
from django.test import override_settings
from django_celery_beat.models import CrontabSchedule, IntervalSchedule, PeriodicTask

from audit.actions import Action
from audit.models import AppendOnlyError, AuditLog
from audit.services import audited
from tests.helpers import form_data
from tests.hostile.conftest import assert_failed_audit
from workers_app.beat_schedules import seed_schedules
from workers_app.catalogue_defaults import seed_defaults
from workers_app.models import Alert, Domain

pytestmark = pytest.mark.django_db

ARCHIVE_TASK = "admin_ops.scheduled_archive"
RIGHT_PASSWORD = "right-Password-4711"


# --- tampering with the log ----------------------------------------------------------------------------------------

def _sql(statement: str, *, many: bool = False):
    def run(row: AuditLog) -> None:
        with connection.cursor() as cursor:
            if many:
                cursor.executemany(statement, [[row.pk]])
            else:
                cursor.execute(statement, [row.pk] if "%s" in statement else None)

    return run


def _by_vendor(**statements: str):
    def run(row: AuditLog) -> None:
        _sql(statements[connection.vendor])(row)

    return run


def _save_as_mallory(row: AuditLog) -> None:
    row.actor = "mallory"
    row.save()


def _bulk_update(manager):
    def run(row: AuditLog) -> None:
        row.actor = "mallory"
        manager().bulk_update([row], ["actor"])

    return run


def _upsert(row: AuditLog) -> None:
    AuditLog._base_manager.bulk_create(
        [AuditLog(id=row.pk, actor="mallory", action=row.action, target=row.target, result=row.result)],
        update_conflicts=True, unique_fields=["id"], update_fields=["actor"])


def _raw_queryset_update(row: AuditLog) -> None:
    list(AuditLog.objects.raw("UPDATE audit_auditlog SET actor = 'mallory' WHERE id = %s RETURNING *", [row.pk]))


TAMPERING = [
    ("queryset update", lambda row: AuditLog.objects.filter(pk=row.pk).update(actor="mallory"), AppendOnlyError),
    ("queryset delete", lambda row: AuditLog.objects.all().delete(), AppendOnlyError),
    ("row save", _save_as_mallory, AppendOnlyError),
    ("row delete", lambda row: row.delete(), AppendOnlyError),
    ("bulk_update", _bulk_update(lambda: AuditLog.objects), AppendOnlyError),
    ("update_or_create", lambda row: AuditLog.objects.update_or_create(pk=row.pk, defaults={"actor": "mallory"}),
     AppendOnlyError),
    ("_base_manager update", lambda row: AuditLog._base_manager.filter(pk=row.pk).update(actor="mallory"),
     IntegrityError),
    ("_base_manager delete", lambda row: AuditLog._base_manager.filter(pk=row.pk).delete(), IntegrityError),
    ("_base_manager bulk_update", _bulk_update(lambda: AuditLog._base_manager), IntegrityError),
    ("bulk_create that updates on conflict", _upsert, IntegrityError),
    ("raw SQL UPDATE", _sql("UPDATE audit_auditlog SET actor = 'mallory' WHERE id = %s"), IntegrityError),
    ("raw SQL UPDATE of every row", _sql("UPDATE audit_auditlog SET result = 'ok'"), IntegrityError),
    ("raw SQL DELETE", _sql("DELETE FROM audit_auditlog WHERE id = %s"), IntegrityError),
    ("raw SQL executemany DELETE", _sql("DELETE FROM audit_auditlog WHERE id = %s", many=True), IntegrityError),
    ("emptying the table (TRUNCATE; DELETE without WHERE on SQLite)",
     _by_vendor(postgresql="TRUNCATE audit_auditlog", sqlite="DELETE FROM audit_auditlog"), IntegrityError),
    ("an insert that replaces the row",
     _by_vendor(sqlite="INSERT OR REPLACE INTO audit_auditlog (id, at, actor, action, target, parameters, result, "
                       "detail, duration_ms) SELECT id, at, 'mallory', action, target, parameters, result, detail, "
                       "duration_ms FROM audit_auditlog",
                postgresql="INSERT INTO audit_auditlog (id, at, actor, action, target, parameters, result, detail, "
                           "duration_ms) SELECT id, at, 'mallory', action, target, parameters, result, detail, "
                           "duration_ms FROM audit_auditlog ON CONFLICT (id) DO UPDATE SET actor = excluded.actor"),
     IntegrityError),
    ("raw queryset UPDATE ... RETURNING", _raw_queryset_update, IntegrityError),
]


@pytest.mark.parametrize(("attempt", "error"), [case[1:] for case in TAMPERING], ids=[case[0] for case in TAMPERING])
def test_it_refuses_to_change_or_delete_an_audit_row(attempt, error, unchanged):
    with audited(Action.RESET_DATA, actor="alice", target="urgency", parameters={"domain": "urgency"}):
        pass
    row = AuditLog.objects.get()
    before = list(AuditLog.objects.values())

    # A savepoint, as an application's own transaction would have: the refused statement rolls back alone.
    with pytest.raises(error, match="the audit log is append-only"), transaction.atomic():
        attempt(row)

    assert list(AuditLog.objects.values()) == before
    unchanged()


# --- guessing passwords --------------------------------------------------------------------------------------------

@pytest.fixture
def alice(django_user_model):
    return django_user_model.objects.create_user("alice", password=RIGHT_PASSWORD, is_staff=True)


def _log_in(client, username: str, password: str):
    return client.post("/admin/login/", {"username": username, "password": password})


def _nothing_mentions(secret: str) -> None:
    rows = json.dumps(list(AuditLog.objects.values()), default=str)
    mirror = settings.AUDIT_LOG_FILE.read_text() if settings.AUDIT_LOG_FILE.exists() else ""
    assert secret not in rows and secret not in mirror


def test_it_locks_out_after_five_wrong_passwords_even_the_right_one_and_audits_each(client, alice, unchanged):
    wrong = [f"wrong-guess-{n}" for n in range(5)]

    answers = [_log_in(client, "alice", password).status_code for password in [*wrong, RIGHT_PASSWORD]]

    assert answers == [200, 200, 200, 200, 429, 429]
    assert "_auth_user_id" not in client.session
    failures = list(AuditLog.objects.filter(action=Action.LOGIN_FAILED).order_by("id"))
    assert [(row.result, row.target, row.parameters, row.client_address) for row in failures] == \
        [("failed", "user alice", {"username": "alice"}, "127.0.0.1")] * 6
    assert [row.detail["error"] for row in failures] == \
        ["wrong username or password"] * 4 + ["locked out after too many failed logins"] * 2
    assert not AuditLog.objects.filter(action=Action.LOGIN).exists()
    for password in [*wrong, RIGHT_PASSWORD]:
        _nothing_mentions(password)
    unchanged()


@pytest.mark.parametrize("username", ["nobody-here", "alice' OR '1'='1", "<script>alert(1)</script>"])
def test_it_refuses_and_audits_a_login_as_an_unknown_user(client, alice, username, unchanged):
    response = _log_in(client, username, "guessed-Password-1")

    assert response.status_code == 200 and b"Please enter the correct username and password" in response.content
    row = AuditLog.objects.get(action=Action.LOGIN_FAILED)
    assert (row.actor, row.parameters, row.detail) == ("anonymous", {"username": username},
                                                       {"error": "wrong username or password"})
    _nothing_mentions("guessed-Password-1")
    unchanged()


# --- beat schedules edited by a staff user who is not a superuser ---------------------------------------------------

@pytest.fixture
def schedules(db):
    seed_schedules()
    return PeriodicTask.objects.get(task=ARCHIVE_TASK)


@pytest.fixture
def scheduler(client, django_user_model, schedules):
    """Staff with every permission on periodic tasks, but not a superuser."""
    user = django_user_model.objects.create_user("scheduler", password="pw-scheduler", is_staff=True)
    user.user_permissions.add(*Permission.objects.filter(content_type__app_label="django_celery_beat",
                                                         codename__endswith="_periodictask"))
    client.force_login(user)
    return client


BEAT = "/admin/django_celery_beat/"
# The schedule pages carry an inline of the tasks using the schedule: a browser posts its management form.
NO_INLINE_CHANGES = {"periodictask_set-TOTAL_FORMS": "0", "periodictask_set-INITIAL_FORMS": "0"}


def _new_task(archive: PeriodicTask) -> dict:
    return {"name": "extra sweep", "task": "workers_app.health_sweep", "interval": IntervalSchedule.objects.first().pk,
            "args": "[]", "kwargs": "{}", "headers": "{}", "enabled": "on"}


NOT_A_SUPERUSER = [
    ("open the add page", "get", lambda task: f"{BEAT}periodictask/add/", lambda task: None),
    ("add a task", "post", lambda task: f"{BEAT}periodictask/add/", _new_task),
    ("change the archive task", "post", lambda task: f"{BEAT}periodictask/{task.pk}/change/",
     lambda task: form_data(task, enabled="", name="archive, hacked")),
    ("delete the archive task", "post", lambda task: f"{BEAT}periodictask/{task.pk}/delete/",
     lambda task: {"post": "yes"}),
    ("add an interval", "post", lambda task: f"{BEAT}intervalschedule/add/",
     lambda task: {"every": "10", "period": "seconds", **NO_INLINE_CHANGES}),
]


@pytest.mark.parametrize(("method", "url", "data"), [case[1:] for case in NOT_A_SUPERUSER],
                         ids=[case[0] for case in NOT_A_SUPERUSER])
def test_it_refuses_schedule_edits_by_staff_who_are_not_superusers(scheduler, schedules, method, url, data, unchanged):
    path = url(schedules)

    response = getattr(scheduler, method)(path, data(schedules)) if method == "post" else scheduler.get(path)

    assert response.status_code == 403
    assert_failed_audit(Action.REFUSED, mentioning=f"{path}: only superusers may add, change or delete beat schedules")
    assert AuditLog.objects.get(action=Action.REFUSED).actor == "scheduler"
    assert not AuditLog.objects.filter(action=Action.SCHEDULE_CHANGE).exists()
    unchanged()


# --- schedules that run too often, even from a superuser ----------------------------------------------------------

@pytest.fixture
def root(client, django_user_model, schedules):
    client.force_login(django_user_model.objects.create_superuser("root", password="pw-root"))
    return client


def _interval(every: int, period: str) -> int:
    return IntervalSchedule.objects.create(every=every, period=period).pk


def _crontab(minute: str) -> int:
    return CrontabSchedule.objects.create(minute=minute, hour="*", timezone="UTC").pk


def _archive_task(**schedule: int) -> dict:
    return {"name": "archive again", "task": ARCHIVE_TASK, "args": "[]", "kwargs": "{}", "headers": "{}",
            "enabled": "on", **schedule}


def _archive_on_interval(every: int, period: str):
    """The archive task moved onto its own interval, whose period the hostile edit then shortens."""
    task = PeriodicTask.objects.get(task=ARCHIVE_TASK)
    task.crontab, task.interval = None, IntervalSchedule.objects.create(every=2, period="hours")
    task.save()
    return (f"{BEAT}intervalschedule/{task.interval_id}/change/",
            {"every": str(every), "period": period, **NO_INLINE_CHANGES})


def _archive_crontab(minute: str):
    crontab = PeriodicTask.objects.get(task=ARCHIVE_TASK).crontab
    return f"{BEAT}crontabschedule/{crontab.pk}/change/", form_data(crontab, minute=minute, **NO_INLINE_CHANGES)


TOO_OFTEN = [
    ("an interval of 1 second", lambda: (f"{BEAT}intervalschedule/add/",
                                         {"every": "1", "period": "seconds", **NO_INLINE_CHANGES}),
     "every", "no task may run more often than every 5 seconds"),
    ("an interval of half a second", lambda: (f"{BEAT}intervalschedule/add/",
                                              {"every": "500000", "period": "microseconds", **NO_INLINE_CHANGES}),
     "every", "no task may run more often than every 5 seconds"),
    ("the archive every second", lambda: (f"{BEAT}periodictask/add/", _archive_task(interval=_interval(1, "seconds"))),
     "interval", "runs every 1 seconds: no task may run more often than every 5 seconds"),
    ("the archive every 10 minutes", lambda: (f"{BEAT}periodictask/add/",
                                              _archive_task(interval=_interval(10, "minutes"))),
     "interval", f"runs every 600 seconds: {ARCHIVE_TASK} may run at most once an hour"),
    ("the archive every 5 minutes by crontab", lambda: (f"{BEAT}periodictask/add/",
                                                       _archive_task(crontab=_crontab("*/5"))),
     "crontab", f"runs every 300 seconds: {ARCHIVE_TASK} may run at most once an hour"),
    ("the archive's interval shortened to 30 minutes", lambda: _archive_on_interval(30, "minutes"),
     "every", f"runs every 1800 seconds: {ARCHIVE_TASK} may run at most once an hour"),
    ("the archive's crontab changed to every minute", lambda: _archive_crontab("*"),
     "minute", f"runs every 60 seconds: {ARCHIVE_TASK} may run at most once an hour"),
]


@pytest.fixture(params=[case[1:] for case in TOO_OFTEN], ids=[case[0] for case in TOO_OFTEN])
def too_often(request, root):
    """(path, form data, field, message): the schedules it needs are made before ``unchanged`` looks."""
    prepare, field, message = request.param
    return (*prepare(), field, message)


def test_it_refuses_a_schedule_that_runs_too_often(root, too_often, unchanged):
    path, data, field, message = too_often

    response = root.post(path, data)

    assert response.status_code == 200, "the form should be shown again with its error"
    assert message in response.context["adminform"].form.errors[field][0]
    assert not AuditLog.objects.filter(action=Action.SCHEDULE_CHANGE).exists()
    unchanged()


# --- an operation refused for want of its permission -------------------------------------------------------------

@pytest.fixture
def clerk(client, django_user_model, catalogue):
    """Staff who may see the archives, but not reset data."""
    user = django_user_model.objects.create_user("clerk", password="pw-clerk", is_staff=True)
    user.user_permissions.add(Permission.objects.get(codename="view_archive"))
    client.force_login(user)
    return client


def test_it_answers_403_and_audits_a_reset_by_staff_without_the_permission(clerk, unchanged):
    response = clerk.post("/admin/admin_ops/archive/operations/reset/", {"reset-domain": "urgency"})

    assert response.status_code == 403
    assert_failed_audit(Action.REFUSED, mentioning="you need the 'reset_data' permission")
    row = AuditLog.objects.get(action=Action.REFUSED)
    assert (row.actor, row.parameters, row.client_address) == (
        "clerk", {"path": "/admin/admin_ops/archive/operations/reset/", "method": "POST"}, "127.0.0.1")
    assert not AuditLog.objects.filter(action=Action.RESET_DATA).exists()
    unchanged()


# --- a mirror file that cannot be written ---------------------------------------------------------------------------

def _a_regular_file_as_folder(tmp_path: Path) -> Path:
    (tmp_path / "file").write_text("")
    return tmp_path / "file" / "admin_audit.log"


UNWRITABLE_MIRRORS = [
    ("disk full (/dev/full)", lambda tmp_path: Path("/dev/full"), "No space left on device"),
    ("a directory", lambda tmp_path: tmp_path, "Is a directory"),
    ("a missing directory", lambda tmp_path: tmp_path / "missing" / "admin_audit.log", "No such file or directory"),
    ("a file where a directory should be", _a_regular_file_as_folder, "Not a directory"),
]


# Committed: the audit mirror is written when the transaction commits.
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(("mirror", "error"), [case[1:] for case in UNWRITABLE_MIRRORS],
                         ids=[case[0] for case in UNWRITABLE_MIRRORS])
def test_an_unwritable_mirror_never_breaks_the_action_and_opens_one_alert(tmp_path, mirror, error, caplog):
    with override_settings(AUDIT_LOG_FILE=mirror(tmp_path)):
        seed_defaults(actor="alice")
        with audited(Action.CLEAR_BACKEND_ERROR, actor="alice", target="annotator 1"):
            pass

    assert Domain.objects.count() == 6
    assert list(AuditLog.objects.order_by("id").values_list("action", "result")) == [
        (Action.SEED_DEFAULTS, "ok"), (Action.CLEAR_BACKEND_ERROR, "ok")]
    alert = Alert.objects.get()
    assert (alert.key, alert.kind, alert.resolved_at) == ("audit_mirror", "audit_mirror", None)
    assert error in alert.message and str(AuditLog.objects.earliest("id").pk) in alert.message
    assert "was not mirrored" in caplog.text and error in caplog.text
