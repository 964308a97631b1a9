from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone

from .corpus import Sample


class ReviewItem(models.Model):
    """A post a clinician must read first: made when the outcome that raises it is stored, one per sample.

    ``reasons`` grows as more outcomes of the sample arrive (e.g. ``["level_4", "urgency_spread"]``); ``risk``
    orders the queue (higher first). ``adjudicated`` maps a domain slug to the reviewer's label (a list of codes).
    """

    class Status(models.TextChoices):
        OPEN = "open", "open"
        CLAIMED = "claimed", "claimed"
        REVIEWED = "reviewed", "reviewed"

    sample = models.OneToOneField(Sample, on_delete=models.CASCADE, related_name="review_item")
    reasons = models.JSONField(default=list)
    risk = models.PositiveSmallIntegerField(default=0)
    spread = models.PositiveSmallIntegerField(default=0, help_text="how many levels the urgency labels lie apart")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.OPEN)
    claimed_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="claimed_reviews")
    claimed_at = models.DateTimeField(null=True, blank=True)
    reviewed_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                    related_name="reviews")
    reviewed_at = models.DateTimeField(null=True, blank=True)
    adjudicated = models.JSONField(default=dict, blank=True)
    note = models.TextField(blank=True)
    alerted_at = models.DateTimeField(null=True, blank=True, help_text="when the LEVEL_4 alert went out")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        indexes = [models.Index(fields=["status", "-risk", "created_at"], name="review_queue_order")]
        permissions = [("review_sample", "Can claim and adjudicate samples in the clinical review queue")]

    def __str__(self) -> str:
        return f"review of sample {self.sample_id} ({self.status})"
