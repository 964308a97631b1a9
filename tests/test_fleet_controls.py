"""Bad arguments, permissions and confirmations of the fleet controls (no processes needed)."""

from __future__ import annotations

import json

import pytest
from django.contrib.auth.models import Permission
from django.core.management import call_command
from django.core.management.base import CommandError

from audit.models import AuditLog
from workers_app.fleet.api import ControlAPI, UnknownCommand
from workers_app.models import Worker

pytestmark = pytest.mark.django_db

CHANGELIST = "/admin/workers_app/worker/"


def snapshot() -> list[tuple]:
    return list(Worker.objects.order_by("pk").values_list("desired_state", "observed_state", "generation"))


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["pause", "--domain", "moodality"], "no domain 'moodality'; the domains are urgency, therapeutic"),
        (["pause", "--annotator", "9"], "no annotator 9; the annotators are 1, 2, 3, 4, 5"),
        (["pause", "--worker", "2-urgency"], "--worker takes N:DOMAIN"),
        (["pause", "--worker", "7:urgency"], "no annotator 7"),
        (["pause", "--all", "--force"], "--force applies to stop only"),
    ],
)
def test_a_bad_scope_is_a_clear_error_that_changes_and_audits_nothing(catalogue, arguments, message):
    call_command("workers", "status", "--all", "--json")  # creates the rows
    before = snapshot()
    with pytest.raises(CommandError, match=message):
        call_command("workers", *arguments)
    assert snapshot() == before
    assert not AuditLog.objects.filter(action__endswith="_worker").exists()


def test_the_command_needs_a_scope_and_a_known_action(catalogue):
    with pytest.raises(CommandError):
        call_command("workers", "pause")
    with pytest.raises(CommandError):
        call_command("workers", "explode", "--all")


def test_pausing_a_stopped_worker_records_the_wish_and_audits_it(catalogue, capsys):
    call_command("workers", "pause", "--worker", "2:urgency", "--json")
    [result] = json.loads(capsys.readouterr().out)
    assert result["message"] == "not running: it will start paused"
    assert Worker.objects.get(annotator__number=2, domain__slug="urgency").desired_state == "paused"
    assert AuditLog.objects.filter(action="pause_worker", target="annotator_2_urgency", result="ok").count() == 1


def test_status_covers_the_whole_fleet(catalogue):
    statuses = ControlAPI("test").global_status()
    assert len(statuses) == 30 and {s["observed"] for s in statuses} == {"stopped"}


def test_the_control_api_refuses_an_unknown_command(catalogue):
    with pytest.raises(UnknownCommand, match="unknown command 'explode'"):
        ControlAPI("test").execute_command("explode")


def test_the_changelist_shows_the_thirty_workers(client, staff, catalogue):
    client.force_login(staff)
    page = client.get(CHANGELIST).content.decode()
    assert page.count("annotator_") >= 30 and "not a\n    clinical model" in page


@pytest.fixture
def clerk(django_user_model):
    user = django_user_model.objects.create_user("clerk", password="pw", is_staff=True)
    user.user_permissions.add(Permission.objects.get(codename="view_worker"))
    return user


def post_action(client, action: str, worker: Worker, **extra):
    return client.post(CHANGELIST, {"action": action, "_selected_action": [worker.pk], **extra}, follow=True)


def test_an_action_is_refused_to_a_user_without_its_permission(client, clerk, catalogue):
    ControlAPI("test").global_status()
    row = Worker.objects.get(annotator__number=1, domain__slug="urgency")
    client.force_login(clerk)
    post_action(client, "pause_workers", row)
    assert Worker.objects.get(pk=row.pk).desired_state == "stopped"
    clerk.user_permissions.add(Permission.objects.get(codename="pause_worker"))
    response = post_action(client, "pause_workers", row)
    assert Worker.objects.get(pk=row.pk).desired_state == "paused"
    assert "Pause annotator_1_urgency: not running: it will start paused" in response.content.decode()


def test_stop_asks_for_confirmation_before_doing_anything(client, staff, catalogue):
    ControlAPI("test").global_status()
    row = Worker.objects.get(annotator__number=1, domain__slug="urgency")
    Worker.objects.filter(pk=row.pk).update(desired_state="running")
    client.force_login(staff)
    page = post_action(client, "stop_workers", row).content.decode()
    assert "Yes, stop them" in page and Worker.objects.get(pk=row.pk).desired_state == "running"
    post_action(client, "stop_workers", row, confirmed="yes")
    assert Worker.objects.get(pk=row.pk).desired_state == "stopped"


def test_move_asks_for_the_host_refuses_a_bad_name_and_needs_its_permission(client, clerk, catalogue):
    ControlAPI("test").global_status()
    row = Worker.objects.get(annotator__number=1, domain__slug="urgency")
    before = row.host
    client.force_login(clerk)
    post_action(client, "move_workers", row, confirmed="yes", to_host="gpu-b")
    assert Worker.objects.get(pk=row.pk).host == before, "no move_worker permission: nothing moves"
    clerk.user_permissions.add(Permission.objects.get(codename="move_worker"))
    page = post_action(client, "move_workers", row).content.decode()
    assert 'name="to_host"' in page and Worker.objects.get(pk=row.pk).host == before, "it asks first"
    page = post_action(client, "move_workers", row, confirmed="yes", to_host="../etc").content.decode()
    assert "host name &#x27;../etc&#x27; is not valid" in page and Worker.objects.get(pk=row.pk).host == before
    page = post_action(client, "move_workers", row, confirmed="yes", to_host="gpu-b").content.decode()
    assert Worker.objects.get(pk=row.pk).host == "gpu-b" and "no agent runs on gpu-b" in page
    assert AuditLog.objects.filter(action="move_worker", target=row.name, result="ok").count() == 1
