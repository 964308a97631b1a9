# The audit log moved here from admin_ops: this takes over its table as it is (no rows are copied or lost).

from django.db import migrations, models


class Migration(migrations.Migration):

    initial = True

    dependencies = [
        ("admin_ops", "0002_operation_archive"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name="AuditLog",
                    fields=[
                        ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False,
                                                   verbose_name="ID")),
                        ("at", models.DateTimeField(auto_now_add=True, db_index=True)),
                        ("actor", models.CharField(help_text="username, or system:<component>", max_length=150)),
                        ("action", models.CharField(db_index=True, max_length=64)),
                        ("target", models.CharField(blank=True, max_length=255)),
                        ("parameters", models.JSONField(blank=True, default=dict)),
                        ("result", models.CharField(choices=[("ok", "succeeded"), ("failed", "failed")],
                                                    max_length=10)),
                        ("detail", models.JSONField(blank=True, default=dict)),
                        ("duration_ms", models.PositiveIntegerField(default=0)),
                        ("client_address", models.GenericIPAddressField(blank=True, null=True)),
                    ],
                    options={
                        "verbose_name": "audit log entry",
                        "verbose_name_plural": "audit log",
                        "ordering": ["-at", "-id"],
                        "db_table": "admin_ops_auditlog",
                    },
                ),
            ],
            database_operations=[],
        ),
    ]
