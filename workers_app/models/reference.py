"""Reference sets: labels that are taken to be right (experts, crowds, the review queue's adjudications), named and
with their provenance, against which a run's annotators are measured.

A ``ReferenceLabel`` is one rater's label of one (sample, domain); a set may hold several raters per item (``rater``
names them, "" when the file had one label per item). Labels are lists of the domain's codes, as outcomes store
them. The value map a set was imported with (file value -> code, per domain) is kept with it, so anyone reading the
set sees how the file's words became codes.
"""

from __future__ import annotations

from django.core.validators import MaxValueValidator, MinValueValidator, RegexValidator
from django.db import models

from .catalogue import Domain, no_control_characters
from .corpus import Sample

REFERENCE_NAME = RegexValidator(r"^[a-z0-9][a-z0-9_-]{0,39}\Z",
                                "1-40 lower-case letters, digits, '-' or '_', starting with a letter or digit.")
# The review queue's adjudications: a set the console keeps itself (never imported, never deleted by hand).
ADJUDICATED_SET = "adjudicated"
MAX_RATER_CHARS = 100


class ReferenceSet(models.Model):
    class Kind(models.TextChoices):
        EXPERT = "expert", "expert"
        CROWD = "crowd", "crowd"
        ADJUDICATED = "adjudicated", "adjudicated"

    name = models.CharField(max_length=40, unique=True, validators=[REFERENCE_NAME])
    description = models.TextField(blank=True, validators=[no_control_characters])
    kind = models.CharField(max_length=12, choices=Kind.choices)
    source = models.CharField(max_length=500, blank=True, validators=[no_control_characters],
                              help_text="where the labels come from (a dataset, a DOI, a study)")
    licence = models.CharField(max_length=200, blank=True, validators=[no_control_characters])
    citation = models.TextField(blank=True, validators=[no_control_characters])
    raters = models.PositiveIntegerField(
        null=True, blank=True, validators=[MinValueValidator(1), MaxValueValidator(100_000)],
        help_text="how many raters made the labels, as the source says (empty: not stated)")
    value_map = models.JSONField(default=dict, blank=True,
                                 help_text="per domain, each file value and the code it was read as")
    # What was imported, read how: the same file read the same way again is a no-op.
    file_name = models.CharField(max_length=255, blank=True)
    sha256 = models.CharField(max_length=64, blank=True)
    selection = models.JSONField(default=dict, blank=True)
    system = models.BooleanField(default=False, editable=False, help_text="kept by the console itself")
    created_by = models.CharField(max_length=150)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]
        permissions = [("view_quality", "Can see the quality of runs against reference sets")]

    def __str__(self) -> str:
        return self.name


class ReferenceLabel(models.Model):
    reference_set = models.ForeignKey(ReferenceSet, on_delete=models.CASCADE, related_name="labels")
    sample = models.ForeignKey(Sample, on_delete=models.CASCADE, related_name="reference_labels")
    domain = models.ForeignKey(Domain, on_delete=models.CASCADE, related_name="reference_labels")
    rater = models.CharField(max_length=MAX_RATER_CHARS, blank=True)
    labels = models.JSONField(default=list)
    source_row = models.PositiveIntegerField(null=True, blank=True, help_text="its row (or line) in the file")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["reference_set", "sample", "domain", "rater"],
                                               name="one_reference_label_per_rater_and_item")]
        indexes = [models.Index(fields=["reference_set", "domain"], name="reference_by_set_and_domain")]

    def __str__(self) -> str:
        return f"{self.reference_set_id}: {self.sample_id}/{self.domain_id} {self.rater}"
