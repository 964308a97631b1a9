"""The default beat schedules, created once (staff may then edit them in the admin)."""

from __future__ import annotations

from django_celery_beat.models import CrontabSchedule, IntervalSchedule, PeriodicTask

# The sweep runs every 5 s, not 30: a frozen worker is noticed once its heartbeat is 60 s old, so a 30 s period
# could leave it down 60 + 30 s; at 5 s it is back within about 67 s. A sweep costs ~35 ms (bench/health.py).
DEFAULTS = [
    ("health sweep", "workers_app.health_sweep", {"every": 5, "period": IntervalSchedule.SECONDS}),
    ("metrics snapshot", "workers_app.snapshot_metrics", {"every": 1, "period": IntervalSchedule.MINUTES}),
    ("integrity, disk and workbook sizes", "workers_app.hourly_checks", {"every": 1, "period": IntervalSchedule.HOURS}),
    ("prune metrics", "workers_app.prune_metrics", {"crontab": {"minute": "17", "hour": "3"}}),
    ("daily archive (keeps ARCHIVE_KEEP)", "admin_ops.scheduled_archive", {"crontab": {"minute": "30", "hour": "2"}}),
]


def seed_schedules() -> int:
    created = 0
    for name, task, when in DEFAULTS:
        if PeriodicTask.objects.filter(name=name).exists():
            continue
        if "crontab" in when:
            schedule, _ = CrontabSchedule.objects.get_or_create(**when["crontab"], timezone="UTC")
            PeriodicTask.objects.create(name=name, task=task, crontab=schedule)
        else:
            schedule, _ = IntervalSchedule.objects.get_or_create(**when)
            PeriodicTask.objects.create(name=name, task=task, interval=schedule)
        created += 1
    return created
