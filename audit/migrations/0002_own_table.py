# Rename the table to the audit app's own name and move the content type, so that the permissions granted on
# the audit log (view_auditlog) stay with the groups and users that have them.

from django.db import migrations


def move_content_type(apps, schema_editor):
    content_types = apps.get_model("contenttypes", "ContentType").objects.using(schema_editor.connection.alias)
    if not content_types.filter(app_label="audit", model="auditlog").exists():
        content_types.filter(app_label="admin_ops", model="auditlog").update(app_label="audit")


def move_content_type_back(apps, schema_editor):
    content_types = apps.get_model("contenttypes", "ContentType").objects.using(schema_editor.connection.alias)
    if not content_types.filter(app_label="admin_ops", model="auditlog").exists():
        content_types.filter(app_label="audit", model="auditlog").update(app_label="admin_ops")


class Migration(migrations.Migration):

    dependencies = [
        ("audit", "0001_initial"),
        ("admin_ops", "0003_auditlog_moved_to_audit"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [
        migrations.AlterModelTable(name="auditlog", table=None),
        migrations.RunPython(move_content_type, move_content_type_back),
    ]
