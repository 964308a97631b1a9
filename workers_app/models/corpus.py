from __future__ import annotations

from django.db import models


class Corpus(models.Model):
    """One import of one file."""

    file_name = models.CharField(max_length=255)
    sha256 = models.CharField(max_length=64)
    # The sheets and columns asked for: the same file read another way is another import.
    selection = models.CharField(max_length=500, default="")
    sheets = models.JSONField(default=list, blank=True)
    row_count = models.PositiveIntegerField(default=0)
    imported_by = models.CharField(max_length=150)
    imported_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-imported_at"]
        verbose_name_plural = "corpora"
        constraints = [models.UniqueConstraint(fields=["sha256", "selection"], name="one_import_per_file_and_selection")]

    def __str__(self) -> str:
        return f"{self.file_name} ({self.row_count} samples)"


class Sample(models.Model):
    """One post to annotate; its external id is unique within the project."""

    external_id = models.CharField(max_length=200, unique=True)
    text = models.TextField()
    corpus = models.ForeignKey(Corpus, on_delete=models.PROTECT, related_name="samples")
    source_sheet = models.CharField(max_length=100, blank=True)
    source_row = models.PositiveIntegerField()

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return self.external_id
