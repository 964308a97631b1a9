"""Staff handling open alerts from the dashboard: acknowledge them (seen; they stay open until their condition
clears, and leave the banner) or snooze them (out of the banner until a time). Both act on one kind of alert at a
time, on the alerts the page showed (up to the newest id it had), so an alert opened since is never hidden unseen.
Each is one audited service; a refusal changes nothing and leaves a failed audit row naming why."""

from __future__ import annotations

import re
from datetime import timedelta

from django.contrib.auth.models import AbstractBaseUser
from django.utils import timezone

from audit.actions import Action
from audit.services import audited
from workers_app.models import Alert

PERMISSION = "workers_app.acknowledge_alert"
# How long a snooze may last, in minutes, with the words the page shows.
SNOOZE_MINUTES = {15: "15 minutes", 60: "1 hour", 240: "4 hours", 1440: "1 day"}
KIND = re.compile(r"^[a-z][a-z0-9_]{0,29}$")  # Alert.kind holds at most 30 characters


class AlertActionRefused(Exception):
    """Not allowed, or not valid: the message says why, for the person who asked."""


def _open_alerts(kind: object, up_to: object):
    if not isinstance(kind, str) or not KIND.match(kind):
        raise AlertActionRefused(f"{str(kind)[:40]!r} is not a kind of alert")
    if up_to is not None and (isinstance(up_to, bool) or not isinstance(up_to, int) or up_to < 1):
        raise AlertActionRefused(f"up_to must be an alert id (a whole number from 1), not {str(up_to)[:40]!r}")
    alerts = Alert.objects.filter(kind=kind, resolved_at__isnull=True, acknowledged_at__isnull=True)
    return alerts if up_to is None else alerts.filter(pk__lte=up_to)


def _check(user: AbstractBaseUser) -> None:
    if not user.has_perm(PERMISSION):
        raise AlertActionRefused(f"{user.get_username()} may not handle alerts (needs {PERMISSION})")


def acknowledge_alerts(kind: str, *, actor_user: AbstractBaseUser, up_to: int | None = None) -> int:
    """Mark the open, unacknowledged alerts of ``kind`` (with ids up to ``up_to``) seen; return how many."""
    with audited(Action.ACKNOWLEDGE_ALERTS, actor=actor_user, target=f"alerts {str(kind)[:40]}",
                 parameters={"kind": str(kind)[:40], "up_to": up_to if isinstance(up_to, int) else None}) as entry:
        _check(actor_user)
        alerts = _open_alerts(kind, up_to)
        changed = alerts.update(acknowledged_at=timezone.now(), acknowledged_by=actor_user.get_username())
        if not changed:
            raise AlertActionRefused(f"no open alert of kind {kind} is waiting to be acknowledged")
        entry.detail = {"alerts": changed}
    return changed


def snooze_alerts(kind: str, *, minutes: int, actor_user: AbstractBaseUser, up_to: int | None = None) -> int:
    """Keep the open, unacknowledged alerts of ``kind`` (ids up to ``up_to``) out of the banner for ``minutes``."""
    with audited(Action.SNOOZE_ALERTS, actor=actor_user, target=f"alerts {str(kind)[:40]}",
                 parameters={"kind": str(kind)[:40], "up_to": up_to if isinstance(up_to, int) else None,
                             "minutes": minutes if isinstance(minutes, int) else str(minutes)[:40]}) as entry:
        _check(actor_user)
        if type(minutes) is not int or minutes not in SNOOZE_MINUTES:
            raise AlertActionRefused(f"snooze for one of {', '.join(map(str, SNOOZE_MINUTES))} minutes, "
                                     f"not {str(minutes)[:40]!r}")
        until = timezone.now() + timedelta(minutes=minutes)
        changed = _open_alerts(kind, up_to).update(snoozed_until=until, snoozed_by=actor_user.get_username())
        if not changed:
            raise AlertActionRefused(f"no open alert of kind {kind} is waiting to be snoozed")
        entry.detail = {"alerts": changed, "until": until.isoformat()}
    return changed
