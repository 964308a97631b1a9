"""The one way every service function records itself in the audit log.

    with audited("import_corpus", actor=user, target=path, parameters={...}) as entry:
        ... do the work inside the transaction ...
        entry.detail = {"imported": 40}

The audit row commits with the work. If the work raises, the work rolls back and a
``failed`` row is written on its own, so failed attempts are visible too. Every committed
row is mirrored as one JSON line to ``DATA_DIR/admin_audit.log``.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.db import transaction

from .models import AuditLog

Actor = Any  # a django User, or a string such as "system:beat"


def actor_name(actor: Actor) -> str:
    if actor is None:
        return "system"
    if isinstance(actor, str):
        return actor
    return actor.get_username()


@dataclass
class AuditEntry:
    detail: dict = field(default_factory=dict)


def _mirror(row: AuditLog) -> None:
    line = json.dumps(
        {
            "id": row.pk,
            "at": row.at.isoformat(),
            "actor": row.actor,
            "action": row.action,
            "target": row.target,
            "parameters": row.parameters,
            "result": row.result,
            "detail": row.detail,
            "duration_ms": row.duration_ms,
            "client_address": row.client_address,
        },
        default=str,
    )
    fd = os.open(settings.AUDIT_LOG_FILE, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
    try:
        os.write(fd, (line + "\n").encode())
    finally:
        os.close(fd)


def _write(**fields: Any) -> AuditLog:
    row = AuditLog.objects.create(**fields)
    transaction.on_commit(lambda: _mirror(row))
    return row


def record(action: str, *, actor: Actor, target: str, ok: bool, parameters: dict | None = None,
           detail: dict | None = None, duration_ms: int = 0, client_address: str | None = None) -> AuditLog:
    """One audit row for work the caller has done (and whose transaction the row joins)."""
    return _write(actor=actor_name(actor), action=action, target=str(target)[:255], parameters=parameters or {},
                  result=AuditLog.Result.OK if ok else AuditLog.Result.FAILED, detail=detail or {},
                  duration_ms=duration_ms, client_address=client_address)


@contextmanager
def audited(
    action: str,
    *,
    actor: Actor,
    target: str = "",
    parameters: dict | None = None,
    client_address: str | None = None,
    atomic: bool = True,
) -> Iterator[AuditEntry]:
    """``atomic=False`` is for long work (archives, restores) that must not hold one database transaction
    open, which on SQLite would stop every worker's writes; the row is then written when the work ends."""
    entry = AuditEntry()
    common = {
        "actor": actor_name(actor),
        "action": action,
        "target": str(target)[:255],
        "parameters": parameters or {},
        "client_address": client_address,
    }
    started = time.monotonic()
    try:
        # With atomic work the row commits with it; otherwise it is written once the work is done.
        with transaction.atomic() if atomic else nullcontext():
            yield entry
            if atomic:
                _write(**common, result=AuditLog.Result.OK, detail=entry.detail, duration_ms=_elapsed_ms(started))
        if not atomic:
            with transaction.atomic():
                _write(**common, result=AuditLog.Result.OK, detail=entry.detail, duration_ms=_elapsed_ms(started))
    except Exception as exc:
        with transaction.atomic():
            _write(
                **common,
                result=AuditLog.Result.FAILED,
                detail={**entry.detail, "error": str(exc)},
                duration_ms=_elapsed_ms(started),
            )
        raise


def _elapsed_ms(started: float) -> int:
    return int((time.monotonic() - started) * 1000)
