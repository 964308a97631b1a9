"""The one way every service function records itself in the audit log.

    with audited(Action.IMPORT_CORPUS, actor=user, target=path, parameters={...}) as entry:
        ... do the work inside the transaction ...
        entry.detail = {"imported": 40}

The audit rows commit with the work. If the work raises, the work rolls back and ``failed`` rows are written on
their own, so failed attempts are visible too. ``targets`` gives one row per target (a bulk operation on many
workers). Every committed row is mirrored as one JSON line to ``DATA_DIR/admin_audit.log`` (a mirror that cannot be
written never breaks the action: see audit.mirror). Events that are not our state changes (logins, refused
requests) are recorded with ``record_event`` and ``record_refusal``.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

from django.db import transaction

from .actions import Action
from .actors import Actor, actor_name
from .cut import cut_values
from .mirror import mirror_row
from .models import AuditLog

# Parameters often carry what a visitor typed: text longer than this is stored cut.
PARAMETER_CHARS = 1_000


class AuditEntry:
    """What a service adds to its audit rows while it works: a shared detail and a detail per target."""

    def __init__(self, action: Action, *, actor: Actor, targets: list[str], parameters: dict | None,
                 client_address: str | None):
        self.detail: dict = {}
        self.target_detail: dict[str, dict] = {}
        self.written = False
        self._targets = targets
        self._common = {"actor": actor_name(actor), "action": action,
                        "parameters": cut_values(parameters or {}, PARAMETER_CHARS),
                        "client_address": client_address}
        self._started = time.monotonic()

    @contextmanager
    def commit(self) -> Iterator[None]:
        """One transaction holding the state change and its ``ok`` rows, for work that does more outside it."""
        with transaction.atomic():
            yield
            self._write(AuditLog.Result.OK, {})
            self.written = True

    def write_failed(self, error: Exception | str) -> list[AuditLog]:
        extra = {"error": str(error), **({"committed_before_the_error": True} if self.written else {})}
        with transaction.atomic():
            return self._write(AuditLog.Result.FAILED, extra)

    def _write(self, result: str, extra: dict) -> list[AuditLog]:
        duration_ms = int((time.monotonic() - self._started) * 1000)
        rows = []
        for target in self._targets:
            row = AuditLog.objects.create(**self._common, target=target[:255], result=result,
                                          detail={**self.detail, **self.target_detail.get(target, {}), **extra},
                                          duration_ms=duration_ms)
            transaction.on_commit(lambda row=row: mirror_row(row))
            rows.append(row)
        return rows


@contextmanager
def audited(
    action: Action,
    *,
    actor: Actor,
    target: str = "",
    targets: list[str] | None = None,
    parameters: dict | None = None,
    client_address: str | None = None,
    atomic: bool = True,
) -> Iterator[AuditEntry]:
    """``atomic=False`` is for long work (archives, restores, queue filling) that must not hold one database
    transaction open, which on SQLite would stop every worker's writes: such work puts its state change in
    ``with entry.commit():``, or the rows are written when the work ends."""
    entry = AuditEntry(action, actor=actor, targets=[str(t) for t in targets] if targets is not None
                       else [str(target)], parameters=parameters, client_address=client_address)
    try:
        if atomic:
            with entry.commit():
                yield entry
        else:
            yield entry
            if not entry.written:
                with entry.commit():
                    pass
    except Exception as exc:
        entry.write_failed(exc)
        raise


def record_event(action: Action, *, actor: Actor, target: str = "", parameters: dict | None = None,
                 client_address: str | None = None) -> None:
    """Something that happened outside our services (a login, a logout): one ``ok`` row."""
    with audited(action, actor=actor, target=target, parameters=parameters, client_address=client_address):
        pass


def record_refusal(action: Action, *, actor: Actor, reason: str, target: str = "", parameters: dict | None = None,
                   client_address: str | None = None) -> None:
    """An attempt refused before any service ran (a wrong password, a missing permission): one ``failed`` row."""
    entry = AuditEntry(action, actor=actor, targets=[target], parameters=parameters, client_address=client_address)
    entry.write_failed(reason)
