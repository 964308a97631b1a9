"""A trained baseline: one version of an annotator's TF-IDF + logistic-regression models (one per domain), learned
from a reference set. The models themselves are a file under DATA_DIR (workers_app.baselines.files); this row is
what the store knows of it: which file, its SHA-256 (nothing else is ever unpickled), what it learned from and its
cross-validated quality there."""

from __future__ import annotations

from django.db import models

from .catalogue import Annotator
from .reference import ReferenceSet


class TrainedBaseline(models.Model):
    annotator = models.ForeignKey(Annotator, on_delete=models.CASCADE, related_name="baselines")
    version = models.PositiveIntegerField()
    # The set it learned from; its name stays when the set is deleted.
    reference_set = models.ForeignKey(ReferenceSet, on_delete=models.SET_NULL, null=True, blank=True,
                                      related_name="baselines")
    reference_name = models.CharField(max_length=40)
    folds = models.PositiveSmallIntegerField()
    # Per learned domain: items, classes, the cross-validated figures (stats.quality, with intervals); and the
    # domains of the set it did not learn, each with the reason.
    domains = models.JSONField(default=dict)
    skipped = models.JSONField(default=dict, blank=True)
    file_name = models.CharField(max_length=200, help_text="relative to DATA_DIR")
    sha256 = models.CharField(max_length=64)
    size = models.PositiveBigIntegerField(default=0)
    seconds = models.FloatField(default=0.0, help_text="how long training and cross-validation took")
    trained_by = models.CharField(max_length=150)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["annotator", "-version"]
        constraints = [models.UniqueConstraint(fields=["annotator", "version"],
                                               name="one_trained_baseline_per_annotator_and_version")]

    def __str__(self) -> str:
        return f"annotator {self.annotator_id} baseline v{self.version}"
