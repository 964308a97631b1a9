from __future__ import annotations

import json

import pytest
from django.conf import settings

from audit.models import AppendOnlyError, AuditLog
from audit.services import audited

pytestmark = pytest.mark.django_db


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


# Committed: the audit mirror is written when the transaction commits.
@pytest.mark.django_db(transaction=True)
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
    row = AuditLog.objects.get(action="demo")
    assert client.get("/admin/audit/auditlog/").status_code == 200
    assert client.get("/admin/audit/auditlog/add/").status_code == 403
    assert client.post(f"/admin/audit/auditlog/{row.pk}/delete/", {"post": "yes"}).status_code == 403
    assert AuditLog.objects.get(pk=row.pk).action == "demo"
    # Both refusals of one actor and client in one period: one row that counts them (audit.refusals).
    [refused] = AuditLog.objects.filter(action="refused")
    assert (refused.actor, refused.parameters["method"], refused.tally.count) == ("root", "GET", 2)
    assert refused.tally.requests == ["GET /admin/audit/auditlog/add/",
                                      f"POST /admin/audit/auditlog/{row.pk}/delete/"]


def test_a_bulk_action_writes_one_row_per_target_with_its_own_detail():
    with audited("launch_worker", actor="alice", targets=["w1", "w2"]) as entry:
        entry.detail = {"shared": True}
        entry.target_detail = {"w2": {"queued": 5}}
    rows = {row.target: row for row in AuditLog.objects.all()}
    assert set(rows) == {"w1", "w2"} and {row.result for row in rows.values()} == {"ok"}
    assert rows["w1"].detail == {"shared": True} and rows["w2"].detail == {"shared": True, "queued": 5}


def test_a_bulk_action_that_fails_leaves_a_failed_row_for_every_target():
    with pytest.raises(RuntimeError), audited("pause_worker", actor="alice", targets=["w1", "w2"]):
        raise RuntimeError("redis away")
    assert sorted(AuditLog.objects.values_list("target", "result", "detail__error")) == [
        ("w1", "failed", "redis away"), ("w2", "failed", "redis away")]


def test_work_that_fails_after_its_commit_keeps_the_ok_row_and_adds_a_failed_one(django_user_model):
    with pytest.raises(RuntimeError), audited("launch_worker", actor="alice", target="w1", atomic=False) as entry:
        with entry.commit():
            django_user_model.objects.create(username="kept")
        raise RuntimeError("broadcast failed")
    assert django_user_model.objects.filter(username="kept").exists()
    rows = list(AuditLog.objects.order_by("id").values_list("result", "detail"))
    assert rows == [("ok", {}), ("failed", {"error": "broadcast failed", "committed_before_the_error": True})]
