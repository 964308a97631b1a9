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
from .reference import ReferenceSet

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
    # Gold checks: reference items mixed into the run (RunSample.gold), each annotator's accuracy on them watched.
    # A set in use by a run cannot be deleted: the run's gold items would lose what they are checked against.
    gold_reference = models.ForeignKey(ReferenceSet, on_delete=models.PROTECT, null=True, blank=True,
                                       related_name="gold_runs", editable=False,
                                       help_text="the reference set whose items are mixed in as gold checks")
    gold_share = models.FloatField(null=True, blank=True, editable=False,
                                   help_text="gold items added, as a share of the samples the run chose")
    gold_min_items = models.PositiveIntegerField(default=10, editable=False,
                                                 help_text="gold answers an annotator gives before it is judged")
    gold_threshold = models.FloatField(null=True, blank=True, editable=False,
                                       help_text="an annotator whose gold accuracy falls below this is paused")
    gold_window = models.PositiveIntegerField(null=True, blank=True, editable=False,
                                              help_text="judge the last N gold answers (empty: all of them)")
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

    @property
    def checks_gold(self) -> bool:
        return self.gold_reference_id is not None


class RunSample(models.Model):
    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="members")
    sample = models.ForeignKey(Sample, on_delete=models.CASCADE, related_name="run_members")
    # A reference item mixed in as a gold check: queued like any sample, known as gold only here.
    gold = models.BooleanField(default=False)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["run", "sample"], name="one_membership_per_sample")]
