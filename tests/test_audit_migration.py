"""Moving the audit log from admin_ops to its own app keeps every row and the permissions granted on it; its
append-only triggers come and go with migration 0003."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group, Permission
from django.db import IntegrityError, connection
from django.db.migrations.executor import MigrationExecutor

from audit.models import AuditLog

pytestmark = pytest.mark.django_db(transaction=True)

BEFORE_THE_MOVE = [("admin_ops", "0002_operation_archive"), ("audit", None)]


def _migrate(targets):
    """Migrate to ``targets``; the models of every app as they are then."""
    return MigrationExecutor(connection).migrate(targets).apps


def test_the_move_keeps_every_audit_row_and_the_permissions_on_the_log():
    executor = MigrationExecutor(connection)
    latest = executor.loader.graph.leaf_nodes()
    try:
        old_state = _migrate(BEFORE_THE_MOVE)
        OldAuditLog = old_state.get_model("admin_ops", "AuditLog")
        for number in range(3):
            OldAuditLog.objects.create(actor="alice", action="import_corpus", target=f"file-{number}", result="ok",
                                       parameters={"n": number}, detail={}, duration_ms=number)
        OldContentType = old_state.get_model("contenttypes", "ContentType")
        OldPermission = old_state.get_model("auth", "Permission")
        old_type, _ = OldContentType.objects.get_or_create(app_label="admin_ops", model="auditlog")
        view, _ = OldPermission.objects.get_or_create(codename="view_auditlog", content_type=old_type,
                                                      defaults={"name": "Can view audit log entry"})
        auditors = old_state.get_model("auth", "Group").objects.create(name="auditors")
        auditors.permissions.add(view)
    finally:
        _migrate(latest)

    assert list(AuditLog.objects.order_by("id").values_list("target", "parameters")) == [
        ("file-0", {"n": 0}), ("file-1", {"n": 1}), ("file-2", {"n": 2})]
    assert AuditLog._meta.db_table == "audit_auditlog"
    assert "admin_ops_auditlog" not in connection.introspection.table_names()
    permission = Permission.objects.get(codename="view_auditlog")
    assert permission.content_type.app_label == "audit"
    assert list(Group.objects.get(name="auditors").permissions.all()) == [permission]


def test_the_append_only_triggers_come_and_go_with_their_migration():
    executor = MigrationExecutor(connection)
    latest = executor.loader.graph.leaf_nodes()
    AuditLog.objects.create(actor="alice", action="import_corpus", result="ok")
    try:
        _migrate([("audit", "0002_own_table")])
        with connection.cursor() as cursor:
            cursor.execute("UPDATE audit_auditlog SET actor = 'bob'")
        assert "audit_maintenance" not in connection.introspection.table_names()
    finally:
        _migrate(latest)

    with pytest.raises(IntegrityError, match="the audit log is append-only"), connection.cursor() as cursor:
        cursor.execute("UPDATE audit_auditlog SET actor = 'carol'")
    assert list(AuditLog.objects.values_list("actor", flat=True)) == ["bob"]
