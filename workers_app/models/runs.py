"""A named run: which samples, annotators and domains, with which prompts and model settings.

Every outcome belongs to one run, so a second run (a new prompt version, another model) keeps the first one's
outcomes and workbooks. The fleet works on the current run; a message names the run it was queued for, so a
sample annotated while the current run changes is still stored where it was asked for.
"""

from __future__ import annotations

from decimal import Decimal

from django.core.validators import MaxValueValidator, MinValueValidator, RegexValidator
from django.db import models
from django.db.models import Q

from .catalogue import MAX_BUDGET, no_control_characters
from .corpus import Sample

DEFAULT_RUN = "default"
RUN_NAME = RegexValidator(r"^[a-z0-9][a-z0-9_-]{0,39}\Z",
                          "1-40 lower-case letters, digits, '-' or '_', starting with a letter or digit.")
# /runs/compare/ is a page: a run of that name could not have one.
RESERVED_NAMES = {"compare"}


class Run(models.Model):
    name = models.CharField(max_length=40, unique=True, validators=[RUN_NAME],
                            help_text="also its folder under DATA_DIR/runs/")
    description = models.TextField(blank=True, validators=[no_control_characters])
    is_current = models.BooleanField(default=False, editable=False)
    # The default run (what existed before runs) takes every sample, also those imported later; a named run takes
    # the samples chosen when it was made (RunSample).
    all_samples = models.BooleanField(default=False, editable=False)
    selection = models.JSONField(default=dict, blank=True, editable=False,
                                 help_text="how the samples were chosen (corpora, share, seed, limit)")
    annotators = models.JSONField(default=list, editable=False, help_text="annotator numbers")
    domains = models.JSONField(default=list, editable=False, help_text="domain slugs")
    # What the run's workers use instead of the live catalogue: prompts, few-shot examples, codes and model
    # settings as they were when the run was made. Empty for the default run, which follows the catalogue.
    pinned = models.JSONField(default=dict, blank=True, editable=False)
    code_version = models.CharField(max_length=80, blank=True, editable=False)
    budget = models.DecimalField(
        max_digits=14, decimal_places=4, null=True, blank=True,
        validators=[MinValueValidator(Decimal(0), "The budget cannot be negative."),
                    MaxValueValidator(MAX_BUDGET, f"The budget can be at most {MAX_BUDGET:,}.")],
        help_text="stop calling once this run's outcomes cost this much (all annotators); empty: no budget")
    samples = models.ManyToManyField(Sample, through="RunSample", related_name="runs", blank=True)
    created_by = models.CharField(max_length=150)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [models.UniqueConstraint(fields=["is_current"], condition=Q(is_current=True),
                                               name="one_current_run")]
        permissions = [("switch_run", "Can make a run the current one"),
                       ("compare_runs", "Can compare two runs")]

    def __str__(self) -> str:
        return self.name

    @property
    def is_pinned(self) -> bool:
        return bool(self.pinned)


class RunSample(models.Model):
    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="members")
    sample = models.ForeignKey(Sample, on_delete=models.CASCADE, related_name="run_members")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["run", "sample"], name="one_membership_per_sample")]
