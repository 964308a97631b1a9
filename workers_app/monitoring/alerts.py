"""Open an alert once per incident, say when it clears, and never let a failing channel stop the sweep."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from functools import cache
from urllib.parse import urlsplit

import httpx
from django.conf import settings
from django.core.mail import send_mail
from django.db import IntegrityError, transaction
from django.utils import timezone

from annotation_site.outbound import OutboundRefused, check_url, policy_client, redacted_url, time_limit
from workers_app.models import Alert, AlertChannel, Worker

log = logging.getLogger(__name__)
WEBHOOK_TIMEOUT = 5.0
ERROR_CHARS = 300


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


@cache
def _webhook_client() -> httpx.Client:
    return policy_client()


class WebhookFailed(Exception):
    """The webhook answered, but not with success."""


def _send(kind: str, target: str, subject: str, alert: Alert) -> None:
    if kind == "email":
        send_mail(subject, alert.message, None, [target])
        return
    check_url(target)  # the policy may have changed since the URL was saved, and settings are never validated
    payload = {
        "text": f"{subject}: {alert.message}",
        "alert": {"key": alert.key, "kind": alert.kind, "worker": alert.worker.name if alert.worker else None,
                  "opened_at": alert.opened_at.isoformat(),
                  "resolved_at": alert.resolved_at.isoformat() if alert.resolved_at else None},
    }
    # The answer's body is never read: a hook that sends megabytes, or one byte a second, costs nothing.
    with time_limit(WEBHOOK_TIMEOUT), _webhook_client().stream("POST", target, json=payload,
                                                               timeout=WEBHOOK_TIMEOUT) as response:
        if not response.is_success:  # a redirect too: it is not followed
            raise WebhookFailed(f"HTTP {response.status_code} {response.reason_phrase}")


def _shown_target(kind: str, target: str) -> str:
    """A webhook URL often carries its token in the path or query: records and logs show scheme and host only."""
    return target if kind == "email" else redacted_url(target)


def _failure(exc: Exception, kind: str, target: str) -> str:
    """Why a delivery failed, without the webhook's path or query."""
    if isinstance(exc, OutboundRefused):
        return exc.reason[:ERROR_CHARS]
    message = str(exc)
    if kind == "webhook":  # it passed check_url, so it parses
        parts = urlsplit(target)
        message = message.replace(target, redacted_url(target))
        for secret in (parts.path, parts.query):
            if len(secret) > 1:
                message = message.replace(secret, "…")
    return message[:ERROR_CHARS]


def _deliver(alert: Alert, subject: str) -> None:
    results = []
    for kind, target in _channels():
        shown = _shown_target(kind, target)
        try:
            _send(kind, target, subject, alert)
            results.append({"channel": kind, "target": shown, "ok": True, "subject": subject})
        except Exception as exc:  # noqa: BLE001  a broken channel is recorded; the other channels still get it
            error = _failure(exc, kind, target)
            log.warning("alert channel %s %s failed: %s", kind, shown, error)
            results.append({"channel": kind, "target": shown, "ok": False, "subject": subject, "error": error})
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
