from __future__ import annotations

from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils import timezone

from .catalogue import Annotator, Domain, finite
from .corpus import Sample
from .pricing import cost_field
from .runs import Run


class Outcome(models.Model):
    """The stored result of one (sample, annotator, domain): the source of truth, written before the ack."""

    class Status(models.TextChoices):
        OK = "ok", "ok"
        MALFORMED = "malformed", "malformed"

    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="outcomes")
    sample = models.ForeignKey(Sample, on_delete=models.CASCADE, related_name="outcomes")
    annotator = models.ForeignKey(Annotator, on_delete=models.CASCADE, related_name="outcomes")
    domain = models.ForeignKey(Domain, on_delete=models.CASCADE, related_name="outcomes")
    status = models.CharField(max_length=10, choices=Status.choices)
    labels = models.JSONField(default=list, blank=True)
    reason = models.CharField(max_length=40, blank=True)
    reason_detail = models.TextField(blank=True)
    raw_answer = models.TextField(blank=True)
    model = models.CharField(max_length=200, blank=True)
    prompt_version = models.PositiveIntegerField()
    parameters = models.JSONField(default=dict, blank=True)
    latency_ms = models.PositiveIntegerField(default=0)
    prompt_tokens = models.PositiveIntegerField(null=True, blank=True)
    completion_tokens = models.PositiveIntegerField(null=True, blank=True)
    # Of the prompt tokens, those the provider read from / wrote to its prompt cache (null: not reported).
    cache_read_tokens = models.PositiveIntegerField(null=True, blank=True)
    cache_write_tokens = models.PositiveIntegerField(null=True, blank=True)
    attempts = models.PositiveSmallIntegerField(default=1)
    # Every call this outcome took, its malformed retries included; null when it had no price or no token counts.
    cost = cost_field(null=True, blank=True)
    cached = models.BooleanField(default=False, help_text="answered from the response cache: no call, no cost")
    cached_latency_ms = models.PositiveIntegerField(null=True, blank=True,
                                                    help_text="a cached answer: how long the original call took")
    # The probability the model gave the tokens that spell its chosen label(s) (engine/logprobs.py); null when the
    # annotator did not ask for logprobs, the server sent none or unreadable ones, or the answer came from the cache.
    confidence = models.FloatField(null=True, blank=True,
                                   validators=[finite, MinValueValidator(0.0), MaxValueValidator(1.0)])
    worker = models.CharField(max_length=200, blank=True)
    started_at = models.DateTimeField()
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["run", "sample", "annotator", "domain"],
                                    name="one_outcome_per_run_sample_and_worker")
        ]
        indexes = [models.Index(fields=["run", "annotator", "domain", "id"], name="outcome_by_run_and_worker")]

    def __str__(self) -> str:
        return f"{self.sample_id}/{self.annotator_id}/{self.domain_id}: {self.status}"

    @property
    def label_text(self) -> str:
        return ", ".join(self.labels) if self.status == self.Status.OK else ""


class MalformedAttempt(models.Model):
    """Every malformed answer, also those a retry later fixed: the raw material for prompt work."""

    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="malformed_attempts")
    sample = models.ForeignKey(Sample, on_delete=models.CASCADE, related_name="malformed_attempts")
    annotator = models.ForeignKey(Annotator, on_delete=models.CASCADE, related_name="malformed_attempts")
    domain = models.ForeignKey(Domain, on_delete=models.CASCADE, related_name="malformed_attempts")
    attempt = models.PositiveSmallIntegerField()
    reason = models.CharField(max_length=40)
    reason_detail = models.TextField(blank=True)
    raw_answer = models.TextField(blank=True)
    model = models.CharField(max_length=200, blank=True)
    prompt_version = models.PositiveIntegerField()
    cost = cost_field(null=True, blank=True)
    cached = models.BooleanField(default=False)
    worker = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        indexes = [models.Index(fields=["run", "annotator", "domain"], name="malformed_by_run_and_worker")]
