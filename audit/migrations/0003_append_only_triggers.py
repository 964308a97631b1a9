# The database itself keeps the audit log append-only, whatever code or SQL runs: triggers refuse every UPDATE,
# and every DELETE (and TRUNCATE) unless a maintenance window is open, i.e. audit_maintenance holds a row (see
# audit/maintenance.py: only Django's test runner opens one, to flush between tests). On SQLite an INSERT that
# would replace an existing row (INSERT OR REPLACE deletes it without firing delete triggers) is refused too.

from django.db import migrations

REFUSAL = "the audit log is append-only"

SQLITE_INSTALL = [
    "CREATE TABLE audit_maintenance (reason varchar(200) NOT NULL)",
    f"""CREATE TRIGGER audit_auditlog_no_update BEFORE UPDATE ON audit_auditlog
        BEGIN SELECT RAISE(ABORT, '{REFUSAL}'); END""",
    f"""CREATE TRIGGER audit_auditlog_no_delete BEFORE DELETE ON audit_auditlog
        WHEN (SELECT count(*) FROM audit_maintenance) = 0
        BEGIN SELECT RAISE(ABORT, '{REFUSAL}'); END""",
    f"""CREATE TRIGGER audit_auditlog_no_replace BEFORE INSERT ON audit_auditlog
        WHEN EXISTS (SELECT 1 FROM audit_auditlog WHERE id = NEW.id)
        BEGIN SELECT RAISE(ABORT, '{REFUSAL}'); END""",
]
SQLITE_UNINSTALL = [
    "DROP TRIGGER IF EXISTS audit_auditlog_no_replace",
    "DROP TRIGGER IF EXISTS audit_auditlog_no_delete",
    "DROP TRIGGER IF EXISTS audit_auditlog_no_update",
    "DROP TABLE IF EXISTS audit_maintenance",
]

POSTGRESQL_INSTALL = [
    "CREATE TABLE audit_maintenance (reason varchar(200) NOT NULL)",
    f"""CREATE FUNCTION audit_auditlog_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            IF TG_OP = 'UPDATE' OR NOT EXISTS (SELECT 1 FROM audit_maintenance) THEN
                RAISE EXCEPTION '{REFUSAL}' USING ERRCODE = 'integrity_constraint_violation';
            END IF;
            RETURN NULL;
        END;
        $$""",
    """CREATE TRIGGER audit_auditlog_append_only BEFORE UPDATE OR DELETE OR TRUNCATE ON audit_auditlog
        FOR EACH STATEMENT EXECUTE FUNCTION audit_auditlog_append_only()""",
]
POSTGRESQL_UNINSTALL = [
    "DROP TRIGGER IF EXISTS audit_auditlog_append_only ON audit_auditlog",
    "DROP FUNCTION IF EXISTS audit_auditlog_append_only()",
    "DROP TABLE IF EXISTS audit_maintenance",
]

STATEMENTS = {
    "sqlite": (SQLITE_INSTALL, SQLITE_UNINSTALL),
    "postgresql": (POSTGRESQL_INSTALL, POSTGRESQL_UNINSTALL),
}


def _run(schema_editor, direction):
    vendor = schema_editor.connection.vendor
    if vendor not in STATEMENTS:
        raise NotImplementedError(f"the audit log has no append-only triggers for {vendor}: use SQLite or PostgreSQL")
    for statement in STATEMENTS[vendor][direction]:
        schema_editor.execute(statement, params=None)


def install(apps, schema_editor):
    _run(schema_editor, 0)


def uninstall(apps, schema_editor):
    _run(schema_editor, 1)


class Migration(migrations.Migration):

    dependencies = [
        ("audit", "0002_own_table"),
    ]

    operations = [
        migrations.RunPython(install, uninstall),
    ]
