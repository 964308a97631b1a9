"""Open an alert once per incident, say when it clears, and never let a failing channel stop the sweep."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import httpx
from django.conf import settings
from django.core.mail import send_mail
from django.db import IntegrityError, transaction
from django.utils import timezone

from workers_app.models import Alert, AlertChannel, Worker

log = logging.getLogger(__name__)
WEBHOOK_TIMEOUT = 5.0


@dataclass(frozen=True)
class Incident:
    key: str
    kind: str
    message: str
    worker: Worker | None = None


def _channels() -> list[tuple[str, str]]:
    configured = [("email", address) for address in settings.ALERT_EMAILS]
    if settings.ALERT_WEBHOOK_URL:
        configured.append(("webhook", settings.ALERT_WEBHOOK_URL))
    stored = AlertChannel.objects.filter(enabled=True).values_list("kind", "target")
    return configured + list(stored)


def _send(kind: str, target: str, subject: str, alert: Alert) -> None:
    if kind == "email":
        send_mail(subject, alert.message, None, [target])
        return
    response = httpx.post(target, timeout=WEBHOOK_TIMEOUT, json={
        "text": f"{subject}: {alert.message}",
        "alert": {"key": alert.key, "kind": alert.kind, "worker": alert.worker.name if alert.worker else None,
                  "opened_at": alert.opened_at.isoformat(),
                  "resolved_at": alert.resolved_at.isoformat() if alert.resolved_at else None},
    })
    response.raise_for_status()


def _deliver(alert: Alert, subject: str) -> None:
    results = []
    for kind, target in _channels():
        try:
            _send(kind, target, subject, alert)
            results.append({"channel": kind, "target": target, "ok": True, "subject": subject})
        except Exception as exc:  # noqa: BLE001  a broken channel is recorded; the other channels still get it
            log.warning("alert channel %s %s failed: %s", kind, target, exc)
            results.append({"channel": kind, "target": target, "ok": False, "subject": subject,
                            "error": str(exc)[:300]})
    alert.deliveries = [*alert.deliveries, *results]
    Alert.objects.filter(pk=alert.pk).update(deliveries=alert.deliveries)


def sync_alerts(active: list[Incident], *, scope: set[str] | None = None) -> tuple[list[Alert], list[Alert]]:
    """Open an alert for each new incident and resolve open ones (within ``scope`` key prefixes) now clear."""
    opened, resolved = [], []
    keys = {incident.key for incident in active}
    for incident in active:
        try:
            with transaction.atomic():
                alert = Alert.objects.create(key=incident.key, kind=incident.kind, message=incident.message,
                                             worker=incident.worker)
        except IntegrityError:
            continue  # already open: one alert per incident
        _deliver(alert, f"[annotation fleet] {incident.kind}")
        opened.append(alert)
    for alert in Alert.objects.filter(resolved_at__isnull=True).exclude(key__in=keys):
        if scope is not None and alert.kind not in scope:
            continue
        alert.resolved_at = timezone.now()
        Alert.objects.filter(pk=alert.pk).update(resolved_at=alert.resolved_at)
        _deliver(alert, f"[annotation fleet] resolved: {alert.kind}")
        resolved.append(alert)
    return opened, resolved
