"""The staff roles seeded with the catalogue: what each may do, checked where the actions run."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group
from django.core.management import call_command

from audit.models import AuditLog

pytestmark = pytest.mark.django_db


@pytest.fixture
def roles(catalogue, django_user_model):
    call_command("seed_defaults")
    people = {}
    for name in ("viewer", "reviewer", "operator"):
        user = django_user_model.objects.create_user(name, password="pw-for-tests", is_staff=True)
        user.groups.add(Group.objects.get(name=name))
        people[name] = django_user_model.objects.get(pk=user.pk)
    return people


@pytest.mark.parametrize(("role", "allowed", "refused"), [
    ("viewer", ["workers_app.view_worker", "workers_app.view_sample"],
     ["workers_app.pause_worker", "admin_ops.consolidate", "workers_app.change_annotator", "audit.view_auditlog"]),
    ("reviewer", ["admin_ops.consolidate", "audit.view_auditlog", "workers_app.view_alert"],
     ["workers_app.launch_worker", "admin_ops.reset_data", "workers_app.change_annotator"]),
    ("operator", ["workers_app.pause_worker", "workers_app.change_annotator", "admin_ops.reset_data",
                  "admin_ops.restore_archive"],
     ["admin_ops.factory_reset", "auth.change_user", "django_celery_beat.change_periodictask"]),
])
def test_each_role_has_what_it_needs_and_nothing_more(roles, role, allowed, refused):
    user = roles[role]
    assert all(user.has_perm(p) for p in allowed), [p for p in allowed if not user.has_perm(p)]
    assert not any(user.has_perm(p) for p in refused), [p for p in refused if user.has_perm(p)]


def test_a_viewer_sees_the_fleet_but_cannot_act_on_it(roles, client):
    client.force_login(roles["viewer"])
    assert client.get("/admin/workers_app/worker/").status_code == 200
    response = client.post("/admin/workers_app/worker/", {"action": "pause_workers", "_selected_action": ["1"]})
    assert not AuditLog.objects.filter(action="pause_worker").exists()
    assert response.status_code == 403 and AuditLog.objects.filter(action="refused", actor="viewer").exists()


def test_seeding_twice_keeps_a_group_staff_have_edited(roles):
    viewer = Group.objects.get(name="viewer")
    viewer.permissions.clear()
    call_command("seed_defaults")
    assert viewer.permissions.count() == 0
    assert AuditLog.objects.filter(action="seed_roles").count() == 1
