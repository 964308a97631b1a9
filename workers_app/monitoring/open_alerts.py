"""The open alerts as the dashboard and its live view show them: grouped by kind, never one line per alert, in
one grouped query whatever their number (a corpus can open hundreds of LEVEL_4 alerts at once)."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime

from django.db.models import Case, CharField, Count, Max, OuterRef, Subquery, Value, When
from django.utils import timezone

from workers_app.models import Alert

NEW, ACKNOWLEDGED, SNOOZED = "new", "acknowledged", "snoozed"


@dataclass
class AlertGroup:
    kind: str
    new: int = 0  # open, neither acknowledged nor snoozed now: what the banner shows
    acknowledged: int = 0
    snoozed: int = 0
    up_to: int = 0  # the newest id among the new ones: what an acknowledgement from this view may cover
    latest_at: datetime | None = None  # when the newest new one opened
    snoozed_until: datetime | None = None
    message: str = ""  # the newest open one's
    workers: dict[int, int] = field(default_factory=dict)  # worker id -> its new alerts of this kind

    @property
    def open(self) -> int:
        return self.new + self.acknowledged + self.snoozed


def alert_groups() -> list[AlertGroup]:
    """Every kind with an open alert, the kinds with new alerts first, then by their newest alert."""
    now = timezone.now()
    state = Case(When(acknowledged_at__isnull=False, then=Value(ACKNOWLEDGED)),
                 When(snoozed_until__gt=now, then=Value(SNOOZED)), default=Value(NEW), output_field=CharField())
    newest = Alert.objects.filter(kind=OuterRef("kind"), resolved_at__isnull=True).order_by("-id").values("message")
    rows = (Alert.objects.filter(resolved_at__isnull=True).annotate(state=state)
            .values("kind", "worker_id", "state")
            .annotate(count=Count("id"), up_to=Max("id"), latest=Max("opened_at"), until=Max("snoozed_until"),
                      message=Subquery(newest[:1]))
            .order_by())
    groups: dict[str, AlertGroup] = {}
    for row in rows:
        group = groups.setdefault(row["kind"], AlertGroup(row["kind"], message=row["message"] or ""))
        setattr(group, row["state"], getattr(group, row["state"]) + row["count"])
        if row["state"] == NEW:
            group.up_to = max(group.up_to, row["up_to"])
            group.latest_at = max(filter(None, (group.latest_at, row["latest"])))
            if row["worker_id"] is not None:
                group.workers[row["worker_id"]] = row["count"]
        elif row["state"] == SNOOZED:
            group.snoozed_until = max(filter(None, (group.snoozed_until, row["until"])))
    return sorted(groups.values(), key=lambda g: (not g.new, -(g.latest_at or now).timestamp(), g.kind))


def new_alerts_per_worker(groups: list[AlertGroup]) -> dict[int, int]:
    counts: dict[int, int] = defaultdict(int)
    for group in groups:
        for worker_id, count in group.workers.items():
            counts[worker_id] += count
    return counts
