"""The hourly jobs: full integrity verification, free disk and workbook sizes."""

from __future__ import annotations

import shutil

from django.conf import settings

from workers_app.engine.integrity import verify_integrity

from .alerts import Incident, sync_alerts


def storage_incidents() -> list[Incident]:
    found = []
    free_mb = shutil.disk_usage(settings.DATA_DIR).free / 2**20
    if free_mb < settings.DISK_ALERT_FREE_MB:
        found.append(Incident("disk:data", "disk", f"only {free_mb:.0f} MB free under {settings.DATA_DIR}"))
    for workbook in sorted((settings.DATA_DIR / "runs").glob("*/annotations/*.xlsx")):
        size_mb = workbook.stat().st_size / 2**20
        if size_mb > settings.WORKBOOK_ALERT_MB:
            run = workbook.parent.parent.name
            found.append(Incident(f"workbook_size:{run}:{workbook.stem}", "workbook_size",
                                  f"{workbook.name} of run {run} is {size_mb:.0f} MB (alert above {settings.WORKBOOK_ALERT_MB} MB)"))
    return found


def hourly_checks() -> dict:
    """Verify (and repair what is derivable) every worker; alert on what stays wrong, disk and sizes."""
    reports = verify_integrity(repair=True)
    incidents = [Incident(f"integrity_hourly:{r.worker}", "integrity_hourly",
                          f"{r.worker}: {'; '.join(r.problems)}") for r in reports if not r.ok]
    opened, resolved = sync_alerts(incidents + storage_incidents(),
                                   scope={"integrity_hourly", "disk", "workbook_size"})
    return {"checked": len(reports), "opened": len(opened), "resolved": len(resolved)}
