from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ("workers_app", "0009_annotator_limits_and_stored_key"),
    ]

    operations = [
        migrations.CreateModel(
            name="Host",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("name", models.CharField(max_length=100, unique=True)),
                ("last_seen", models.DateTimeField(blank=True, null=True)),
                ("agent_pid", models.PositiveIntegerField(blank=True, null=True)),
                ("agent_started_at", models.DateTimeField(blank=True, null=True)),
            ],
            options={"ordering": ["name"]},
        ),
        migrations.AddField(
            model_name="worker",
            name="moving_from",
            field=models.CharField(blank=True, max_length=100),
        ),
        migrations.AlterModelOptions(
            name="worker",
            options={
                "ordering": ["annotator__number", "domain__position"],
                "permissions": [
                    ("launch_worker", "Can launch workers"), ("pause_worker", "Can pause workers"),
                    ("resume_worker", "Can resume workers"), ("stop_worker", "Can stop workers"),
                    ("restart_worker", "Can restart workers"), ("flush_worker", "Can flush workers' workbooks"),
                    ("move_worker", "Can move workers to another host"),
                ],
            },
        ),
    ]
