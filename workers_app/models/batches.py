"""Provider batches (batch mode): what was asked in each, so that a worker killed at any instant loses nothing and
submits nothing twice."""

from __future__ import annotations

from django.db import models
from django.utils import timezone

from .catalogue import Annotator, Domain
from .corpus import Sample
from .pricing import cost_field
from .runs import Run


class Batch(models.Model):
    """One provider batch of one worker (annotator, domain) and run. Recorded as ``submitting`` with its requests
    before the create call, so a restart finds it: by its provider id once known, or by ``ref`` (sent as the
    batch's metadata) when a kill landed between the call and its record."""

    class State(models.TextChoices):
        SUBMITTING = "submitting", "submitting"
        IN_FLIGHT = "in_flight", "in flight"
        ENDED = "ended", "ended"

    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="batches")
    annotator = models.ForeignKey(Annotator, on_delete=models.CASCADE, related_name="batches")
    domain = models.ForeignKey(Domain, on_delete=models.CASCADE, related_name="batches")
    protocol = models.CharField(max_length=12, choices=Annotator.BatchProtocol.choices)
    ref = models.CharField(max_length=40, unique=True, help_text="our name for it, sent as the batch's metadata")
    provider_id = models.CharField(max_length=200, blank=True)
    state = models.CharField(max_length=12, choices=State.choices, default=State.SUBMITTING)
    provider_status = models.CharField(max_length=40, blank=True)
    requests = models.PositiveIntegerField(default=0)
    succeeded = models.PositiveIntegerField(default=0)
    failed = models.PositiveIntegerField(default=0)
    # The worst case reserved against the budgets at submission, and the actual cost once settled.
    reserved = cost_field(default=0)
    cost = cost_field(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    submitted_at = models.DateTimeField(null=True, blank=True)
    ended_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name_plural = "batches"
        indexes = [models.Index(fields=["annotator", "domain", "state"], name="batch_by_worker_state")]

    def __str__(self) -> str:
        return f"batch {self.ref} of annotator {self.annotator_id} / {self.domain_id} ({self.state})"


class BatchRequest(models.Model):
    """One (run, sample, annotator, domain) taken from the queue in batch mode: recorded before its message is
    acknowledged, pending until a batch takes it, answered once that batch ends."""

    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="batch_requests")
    sample = models.ForeignKey(Sample, on_delete=models.CASCADE, related_name="batch_requests")
    annotator = models.ForeignKey(Annotator, on_delete=models.CASCADE, related_name="batch_requests")
    domain = models.ForeignKey(Domain, on_delete=models.CASCADE, related_name="batch_requests")
    batch = models.ForeignKey(Batch, null=True, blank=True, on_delete=models.SET_NULL, related_name="items")
    custom_id = models.CharField(max_length=64)
    attempts = models.PositiveSmallIntegerField(default=0, help_text="batches that took it so far")
    spent = cost_field(null=True, blank=True, help_text="what its earlier, malformed answers cost")
    last_error = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["run", "sample", "annotator", "domain"],
                                               name="one_batch_request_per_outcome")]
        indexes = [models.Index(fields=["annotator", "domain", "batch"], name="batch_request_pending")]

    def __str__(self) -> str:
        return self.custom_id
