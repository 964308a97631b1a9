from __future__ import annotations

from django.db import models


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
            ("manage_people", "Can add people in a role, change their role and deactivate them"),
        ]
