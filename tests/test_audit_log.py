from __future__ import annotations

import json

import pytest
from django.conf import settings

from admin_ops.audit import audited
from admin_ops.models import AppendOnlyError, AuditLog

pytestmark = pytest.mark.django_db(transaction=True)


def test_an_audit_row_cannot_be_changed_or_deleted():
    with audited("demo", actor="alice", target="x"):
        pass
    row = AuditLog.objects.get()
    row.actor = "mallory"
    for attempt in (row.save, row.delete, AuditLog.objects.all().delete,
                    lambda: AuditLog.objects.update(actor="mallory")):
        with pytest.raises(AppendOnlyError):
            attempt()
    assert AuditLog.objects.get().actor == "alice"


def test_a_failed_action_rolls_back_its_work_but_leaves_a_failed_audit_row(django_user_model):
    with pytest.raises(ValueError), audited("make_user", actor="alice", parameters={"n": 1}):
        django_user_model.objects.create(username="ghost")
        raise ValueError("disk full")
    assert not django_user_model.objects.filter(username="ghost").exists()
    row = AuditLog.objects.get()
    assert (row.result, row.detail["error"], row.parameters) == ("failed", "disk full", {"n": 1})


def test_every_committed_row_is_mirrored_as_a_json_line():
    before = settings.AUDIT_LOG_FILE.read_text().count("\n") if settings.AUDIT_LOG_FILE.exists() else 0
    with audited("first", actor="alice"):
        pass
    with audited("second", actor="bob", target="w1") as entry:
        entry.detail = {"n": 2}
    lines = settings.AUDIT_LOG_FILE.read_text().splitlines()[before:]
    assert [json.loads(line)["action"] for line in lines] == ["first", "second"]
    assert json.loads(lines[1])["detail"] == {"n": 2}


def test_the_admin_shows_the_log_read_only_even_to_superusers(client, django_user_model):
    admin_user = django_user_model.objects.create_superuser("root", password="pw")
    with audited("demo", actor="alice"):
        pass
    client.force_login(admin_user)
    row = AuditLog.objects.get()
    assert client.get("/admin/admin_ops/auditlog/").status_code == 200
    assert client.get("/admin/admin_ops/auditlog/add/").status_code == 403
    assert client.post(f"/admin/admin_ops/auditlog/{row.pk}/delete/", {"post": "yes"}).status_code == 403
    assert AuditLog.objects.count() == 1
