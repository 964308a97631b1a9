"""Every committed audit row is also one JSON line in DATA_DIR/admin_audit.log, for tools that tail files.

The row is committed before it is mirrored, so a file that cannot be written (disk full, permissions) never undoes
or breaks the action: the error is logged and ``audit.signals.mirror_failed`` is sent, and the database keeps the row.
"""

from __future__ import annotations

import json
import logging
import os

from django.conf import settings

from .models import AuditLog
from .signals import mirror_failed

log = logging.getLogger(__name__)


def mirror_row(row: AuditLog) -> None:
    try:
        _append(_line(row))
    except OSError as exc:
        log.error("audit row %s was not mirrored to %s: %s", row.pk, settings.AUDIT_LOG_FILE, exc)
        # send_robust: a failing receiver is logged by Django and must not break the action either.
        mirror_failed.send_robust(sender=AuditLog, row_id=row.pk, error=str(exc))


def _line(row: AuditLog) -> str:
    return json.dumps(
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


def _append(line: str) -> None:
    # 0600: the log names users, addresses and what they did; only the service account reads it.
    fd = os.open(settings.AUDIT_LOG_FILE, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        os.write(fd, (line + "\n").encode())
    finally:
        os.close(fd)
