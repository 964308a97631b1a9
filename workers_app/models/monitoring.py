from __future__ import annotations

from urllib.parse import urlsplit

from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import models

from annotation_site.outbound import OutboundRefused, check_url

from .fleet import Worker


class AlertChannel(models.Model):
    """Where alerts go, besides the channels named in settings (ALERT_EMAILS, ALERT_WEBHOOK_URL)."""

    class Kind(models.TextChoices):
        EMAIL = "email", "email"
        WEBHOOK = "webhook", "JSON webhook (works with Slack incoming webhooks)"

    kind = models.CharField(max_length=10, choices=Kind.choices)
    target = models.CharField(max_length=500, help_text="an email address, or the webhook URL")
    enabled = models.BooleanField(default=True)

    def __str__(self) -> str:
        return f"{self.kind}: {self.shown_target}"

    @property
    def shown_target(self) -> str:
        """A webhook URL often carries its token in the path or query: show scheme and host only."""
        if self.kind == self.Kind.EMAIL:
            return self.target
        parts = urlsplit(self.target)
        return f"{parts.scheme}://{parts.hostname}/…" if parts.hostname else "(not a URL)"

    def clean(self) -> None:
        try:
            if self.kind == self.Kind.EMAIL:
                validate_email(self.target)
            else:
                check_url(self.target)
        except (ValidationError, OutboundRefused) as exc:
            message = exc.messages[0] if isinstance(exc, ValidationError) else str(exc)
            raise ValidationError({"target": message}) from None


class Alert(models.Model):
    """One incident: opened once, delivered once, and resolved once when its condition clears."""

    key = models.CharField(max_length=200, help_text="kind:subject, e.g. stalled:annotator_1_urgency")
    kind = models.CharField(max_length=30)
    worker = models.ForeignKey(Worker, null=True, blank=True, on_delete=models.SET_NULL, related_name="alerts")
    message = models.TextField()
    opened_at = models.DateTimeField(auto_now_add=True)
    resolved_at = models.DateTimeField(null=True, blank=True)
    deliveries = models.JSONField(default=list, blank=True)
    # Staff saw it (it stays open until its condition clears, but leaves the dashboard's banner), or put it out of
    # sight until a time; workers_app.monitoring.acknowledge sets both.
    acknowledged_at = models.DateTimeField(null=True, blank=True)
    acknowledged_by = models.CharField(max_length=150, blank=True)
    snoozed_until = models.DateTimeField(null=True, blank=True)
    snoozed_by = models.CharField(max_length=150, blank=True)

    class Meta:
        ordering = ["-opened_at"]
        constraints = [models.UniqueConstraint(fields=["key"], condition=models.Q(resolved_at__isnull=True),
                                               name="one_open_alert_per_incident")]
        permissions = [("acknowledge_alert", "Can acknowledge or snooze open alerts")]

    def __str__(self) -> str:
        return f"{self.key} ({'open' if self.resolved_at is None else 'resolved'})"


class WorkerMetric(models.Model):
    """A per-minute snapshot of one worker, kept METRICS_KEEP_DAYS days."""

    worker = models.ForeignKey(Worker, on_delete=models.CASCADE, related_name="metrics")
    at = models.DateTimeField(db_index=True)
    throughput = models.PositiveIntegerField(help_text="outcomes stored in the minute")
    malformed_rate = models.FloatField()
    latency_p50_ms = models.PositiveIntegerField(null=True)
    latency_p95_ms = models.PositiveIntegerField(null=True)
    queue_length = models.PositiveIntegerField()
    rss = models.PositiveBigIntegerField(null=True)

    class Meta:
        ordering = ["-at"]
