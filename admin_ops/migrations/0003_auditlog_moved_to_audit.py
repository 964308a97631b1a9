# AuditLog now belongs to the audit app (audit.0001 took over the table); only Django's model state changes here.

from django.db import migrations


class Migration(migrations.Migration):

    dependencies = [
        ("admin_ops", "0002_operation_archive"),
        ("audit", "0001_initial"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[migrations.DeleteModel(name="AuditLog")],
            database_operations=[],
        ),
    ]
