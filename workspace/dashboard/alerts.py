"""The dashboard's alert banner: one line per kind of open alert with a count and a link to where the work is
(never one line per alert), and the acknowledge / snooze requests staff send from it."""

from __future__ import annotations

from dataclasses import dataclass

from django.utils import timezone

from workers_app.monitoring.acknowledge import (
    SNOOZE_MINUTES,
    AlertActionRefused,
    acknowledge_alerts,
    snooze_alerts,
)
from workers_app.monitoring.open_alerts import AlertGroup


@dataclass(frozen=True)
class KindText:
    one: str
    many: str
    link: str = ""  # where the work is, when it is not one worker's page


_WORKBOOKS = "/files/"
KINDS = {
    "review_level_4": KindText("{n} post rated LEVEL_4 awaits review", "{n} posts rated LEVEL_4 await review",
                               "/review/?reason=level_4"),
    "stalled": KindText("{n} worker stalled", "{n} workers stalled"),
    "stuck": KindText("{n} worker finishes nothing with work queued", "{n} workers finish nothing with work queued"),
    "fatal": KindText("{n} worker is fatal (crashed again and again)", "{n} workers are fatal (crashed again and again)"),
    "throttled": KindText("{n} worker used up its automatic restarts", "{n} workers used up their automatic restarts"),
    "error_rate": KindText("{n} worker gives many malformed answers", "{n} workers give many malformed answers"),
    "integrity": KindText("{n} workbook failed its check", "{n} workbooks failed their check", _WORKBOOKS),
    "integrity_hourly": KindText("{n} worker failed the hourly integrity check",
                                 "{n} workers failed the hourly integrity check"),
    "backend": KindText("{n} annotator's backend fails", "{n} annotators' backends fail"),
    "host_lost": KindText("{n} host lost", "{n} hosts lost"),
    "disk": KindText("disk space is low", "disk space is low"),
    "workbook_size": KindText("{n} workbook is very large", "{n} workbooks are very large", _WORKBOOKS),
    "budget": KindText("{n} budget reached: its workers paused", "{n} budgets reached: their workers paused"),
    "gold": KindText("{n} annotator below its gold accuracy: its workers paused",
                     "{n} annotators below their gold accuracy: their workers paused", "/quality/"),
    "audit_mirror": KindText("the audit log's mirror file cannot be written",
                             "the audit log's mirror file cannot be written"),
}


def headline(kind: str, count: int) -> str:
    text = KINDS.get(kind)
    if text is None:
        return f"{count} open alert{'s' if count != 1 else ''} of kind {kind}"
    return (text.one if count == 1 else text.many).format(n=f"{count:,}")


def _when(moment) -> str:
    return timezone.localtime(moment).strftime("%Y-%m-%d %H:%M") if moment else ""


def group_json(group: AlertGroup, worker_names: dict[int, str]) -> dict:
    """A group as the page and its live updates show it (the same for every viewer: no permission in it)."""
    workers = sorted(worker_names[pk] for pk in group.workers if pk in worker_names)
    link = KINDS[group.kind].link if group.kind in KINDS else ""
    if not link and len(workers) == 1:
        link = f"/dashboard/workers/{workers[0]}/"
    return {"kind": group.kind, "headline": headline(group.kind, group.new or group.open), "link": link,
            "new": group.new, "acknowledged": group.acknowledged, "snoozed": group.snoozed, "up_to": group.up_to,
            "latest": _when(group.latest_at), "snoozed_until": _when(group.snoozed_until),
            "message": group.message[:300], "workers": workers}


HOW = ("acknowledge", "snooze")
SNOOZE_CHOICES = list(SNOOZE_MINUTES.items())


def handle_alerts(data, *, user) -> tuple[str, int]:
    """Acknowledge or snooze what the form names; (what was done, how many alerts). Values are passed on as given
    where they are not whole numbers: the service refuses them, and its refusal is audited."""
    how = data.get("how", "")
    if how not in HOW:
        raise AlertActionRefused(f"unknown request {how[:40]!r}: {' or '.join(HOW)}")
    kind, up_to = data.get("kind", ""), _whole(data.get("up_to"))
    if how == "acknowledge":
        return "acknowledged", acknowledge_alerts(kind, actor_user=user, up_to=up_to)
    return "snoozed", snooze_alerts(kind, minutes=_whole(data.get("minutes")), actor_user=user, up_to=up_to)


def _whole(raw: str | None) -> int | str | None:
    if raw in (None, ""):
        return None
    return int(raw) if raw.isascii() and raw.isdigit() and len(raw) <= 12 else raw
