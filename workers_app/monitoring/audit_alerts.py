"""An audit row that could not be written to the mirror file opens the ``audit_mirror`` alert: the row is safe in
the database, but tools tailing the file miss it until someone fixes the file (disk, permissions)."""

from __future__ import annotations

from django.conf import settings

from .alerts import Incident, sync_alerts

MIRROR_ALERT = "audit_mirror"


def open_mirror_alert(sender, row_id: int, error: str, **kwargs) -> None:
    """Receiver of ``audit.signals.mirror_failed``; one open alert however many rows fail."""
    message = (f"audit row {row_id} was not written to {settings.AUDIT_LOG_FILE}: {error}. The database keeps "
               "every row; the file misses this one and any later ones until it is writable again.")
    # scope=set(): opening this alert must not resolve the alerts of the health sweep.
    sync_alerts([Incident(key=MIRROR_ALERT, kind=MIRROR_ALERT, message=message)], scope=set())
