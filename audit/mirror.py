"""Every committed audit row is also one JSON line in DATA_DIR/admin_audit.log, for tools that tail files."""

from __future__ import annotations

import json
import os

from django.conf import settings

from .models import AuditLog


def mirror_row(row: AuditLog) -> None:
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
