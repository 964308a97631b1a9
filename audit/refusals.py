"""Refused requests in the audit log, folded so that nobody can flood it.

Each anonymous POST without a CSRF token used to be a row of its own, kept for ever: 200 posts, 200 rows. Now the
first refusal of an actor from a client in a period (AUDIT_REFUSAL_PERIOD_SECONDS) is a ``refused`` row and the
rest of that period only counts on it (audit.models.RefusalTally); an IPv6 client is its /64 network (a host has
many addresses), and past MAX_CLIENTS clients in one period every new client folds into one row for "*". Paths and
reasons are cut, so a 4,000-character path stores 200.
"""

from __future__ import annotations

import ipaddress
from datetime import datetime

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from .actions import Action
from .actors import Actor, actor_name
from .cut import cut
from .models import RefusalTally
from .services import AuditEntry

MAX_CLIENTS = 100  # per period
PATH_CHARS = 200
REASON_CHARS = 300
KEPT_REQUESTS = 10


def client_key(address: str | None) -> str:
    """Who a refusal is counted against: the address, or an IPv6 address's /64 network."""
    try:
        ip = ipaddress.ip_address(address or "")
    except ValueError:
        return "unknown"
    if ip.version == 6 and ip.ipv4_mapped is None:
        return str(ipaddress.ip_network(f"{ip}/64", strict=False))
    return str(getattr(ip, "ipv4_mapped", None) or ip)


def period_start(now: datetime) -> datetime:
    period = settings.AUDIT_REFUSAL_PERIOD_SECONDS
    return datetime.fromtimestamp(int(now.timestamp()) // period * period, tz=now.tzinfo)


def record_request_refused(*, actor: Actor, client_address: str | None, method: str, path: str,
                           reason: str) -> None:
    """A refused request: a new ``refused`` row, or one more on the row of this actor and client this period."""
    path = cut(path, PATH_CHARS)
    seen = f"{method[:10]} {path}"
    name, now = actor_name(actor)[:150], timezone.now()
    start = period_start(now)
    client = client_key(client_address)
    for _ in range(3):  # a race for the first row of a period: the loser counts on the winner's row
        with transaction.atomic():
            tally = _tally(name, client, start)
            if tally is None and RefusalTally.objects.filter(period_start=start).count() >= MAX_CLIENTS:
                client = "*"
                tally = _tally(name, client, start)
            if tally is not None:
                _count(tally, seen, now)
                return
            try:
                with transaction.atomic():
                    entry = AuditEntry(Action.REFUSED, actor=name, targets=[path],
                                       parameters={"path": path, "method": method[:10]}, client_address=client_address)
                    [row] = entry.write_failed(cut(f"{seen}: {reason}", REASON_CHARS))
                    RefusalTally.objects.create(row=row, actor=name, client=client, period_start=start, last_at=now,
                                                requests=[seen])
                return
            except IntegrityError:
                continue


def _tally(actor: str, client: str, start: datetime) -> RefusalTally | None:
    return RefusalTally.objects.select_for_update().filter(actor=actor, client=client, period_start=start).first()


def _count(tally: RefusalTally, seen: str, now: datetime) -> None:
    tally.count += 1
    tally.last_at = now
    if seen not in tally.requests and len(tally.requests) < KEPT_REQUESTS:
        tally.requests = [*tally.requests, seen]
    tally.save(update_fields=["count", "last_at", "requests"])
