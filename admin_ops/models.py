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


class Archive(models.Model):
    """A tar.gz of the data in DATA_DIR/archives, with a manifest of SHA-256 checksums."""

    name = models.CharField(max_length=100, unique=True)
    file_name = models.CharField(max_length=200)
    sha256 = models.CharField(max_length=64)
    size = models.PositiveBigIntegerField()
    counts = models.JSONField(default=dict)
    created_at = models.DateTimeField(auto_now_add=True)
    created_by = models.CharField(max_length=150)
    verified_at = models.DateTimeField(null=True, blank=True)
    verify_ok = models.BooleanField(null=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return self.name


class Operation(models.Model):
    """Holds the permissions of the staff operations on data; it has no table."""

    class Meta:
        managed = False
        default_permissions = ()
        permissions = [
            ("reset_data", "Can reset a domain or an annotator"),
            ("factory_reset", "Can reset everything (superusers only in practice)"),
            ("create_archive", "Can create archives"),
            ("verify_archive", "Can verify archives"),
            ("restore_archive", "Can restore archives"),
            ("export_state", "Can export state"),
            ("import_state", "Can import state"),
            ("consolidate", "Can consolidate workbooks"),
        ]
