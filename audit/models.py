"""The audit log: one row per operator or system action, append-only."""

from __future__ import annotations

from django.db import models


class AppendOnlyError(RuntimeError):
    """Raised on any attempt to change or delete an audit row."""


class AuditLogQuerySet(models.QuerySet):
    def update(self, **kwargs):
        raise AppendOnlyError("the audit log is append-only")

    def delete(self):
        raise AppendOnlyError("the audit log is append-only")


class AuditLog(models.Model):
    """One operator (or system) action, written in the same transaction as the action."""

    class Result(models.TextChoices):
        OK = "ok", "succeeded"
        FAILED = "failed", "failed"

    at = models.DateTimeField(auto_now_add=True, db_index=True)
    actor = models.CharField(max_length=150, help_text="username, or system:<component>")
    action = models.CharField(max_length=64, db_index=True)
    target = models.CharField(max_length=255, blank=True)
    parameters = models.JSONField(default=dict, blank=True)
    result = models.CharField(max_length=10, choices=Result.choices)
    detail = models.JSONField(default=dict, blank=True)
    duration_ms = models.PositiveIntegerField(default=0)
    client_address = models.GenericIPAddressField(null=True, blank=True)

    objects = AuditLogQuerySet.as_manager()

    class Meta:
        ordering = ["-at", "-id"]
        verbose_name = "audit log entry"
        verbose_name_plural = "audit log"

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M:%S} {self.actor} {self.action} {self.target} {self.result}"

    def save(self, *args, **kwargs):
        if self.pk is not None:
            raise AppendOnlyError("the audit log is append-only")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise AppendOnlyError("the audit log is append-only")


class RefusalTally(models.Model):
    """Refused requests of one actor and client in one period, folded into one audit row.

    The row is the period's first refusal; later ones of the same actor and client only count here, so a flood of
    refused requests cannot flood the log. This table is a counter beside the log, not part of it (the log itself
    stays append-only); ``requests`` keeps the first few distinct "METHOD path" seen.
    """

    row = models.OneToOneField(AuditLog, on_delete=models.DO_NOTHING, db_constraint=False, related_name="tally")
    actor = models.CharField(max_length=150)
    client = models.CharField(max_length=64, help_text="the client address, its IPv6 /64 network, or * for many")
    period_start = models.DateTimeField(db_index=True)
    count = models.PositiveIntegerField(default=1)
    last_at = models.DateTimeField()
    requests = models.JSONField(default=list)

    class Meta:
        verbose_name_plural = "refusal tallies"
        constraints = [models.UniqueConstraint(fields=["actor", "client", "period_start"],
                                               name="one_tally_per_actor_client_period")]

    def __str__(self) -> str:
        return f"{self.actor} from {self.client}: {self.count} refusal(s) since {self.period_start:%Y-%m-%d %H:%M}"
