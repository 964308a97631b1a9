"""Hosts: each agent beats into its Host row; a host whose agent is silent for FLEET_HOST_LOST_SECONDS is lost.

The beat is in the database, not Redis: a Redis restart must not make every host look lost, and the admin and
the sweep read placement and liveness in one place.
"""

from __future__ import annotations

import re
from datetime import timedelta

from django.conf import settings
from django.utils import timezone

from workers_app.models import Host, Worker

HOST_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")
ALIVE, LOST, UNKNOWN = "alive", "lost", "unknown"


class InvalidHost(ValueError):
    """A host name that cannot be a placement."""


def check_host_name(name: str) -> str:
    name = (name or "").strip()
    if not HOST_NAME.fullmatch(name):
        raise InvalidHost(f"host name {name!r} is not valid: use 1-100 letters, digits, '.', '_' or '-', "
                          "starting with a letter or digit")
    return name


def beat(host: str, *, pid: int, started_at) -> None:
    """The agent of ``host`` is alive now."""
    now = timezone.now()
    updated = Host.objects.filter(name=host).update(last_seen=now, agent_pid=pid, agent_started_at=started_at)
    if not updated:
        Host.objects.get_or_create(name=host, defaults={"last_seen": now, "agent_pid": pid,
                                                        "agent_started_at": started_at})


def _alive_since():
    return timezone.now() - timedelta(seconds=settings.FLEET_HOST_LOST_SECONDS)


def host_states() -> dict[str, str]:
    """``alive`` or ``lost`` for every host whose agent ever beat, ``unknown`` for a placement no agent has run
    on yet (nothing starts its workers, but nothing was lost either)."""
    seen = dict(Host.objects.values_list("name", "last_seen"))
    since = _alive_since()
    states = {name: ALIVE if last and last >= since else LOST for name, last in seen.items()}
    for name in Worker.objects.values_list("host", flat=True).distinct():
        states.setdefault(name, UNKNOWN)
    return dict(sorted(states.items()))


def is_alive(name: str) -> bool:
    return Host.objects.filter(name=name, last_seen__gte=_alive_since()).exists()


def least_loaded(alive: set[str]) -> str | None:
    """The live host that runs the fewest workers, for failover."""
    if not alive:
        return None
    load = {name: Worker.objects.filter(host=name).count() for name in alive}
    return min(sorted(load), key=load.__getitem__)
