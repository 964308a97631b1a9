"""Reads of the review queue that pages, the API and the consolidated workbook share."""

from __future__ import annotations

from django.db.models import QuerySet

from workers_app.models import ReviewItem, Run


def run_review_items(run: Run) -> QuerySet[ReviewItem]:
    """The review items of the samples ``run`` takes, highest risk first, then oldest. An item belongs to its post,
    not to a run: a named run lists the items of its own posts only, never those of posts it does not take."""
    items = ReviewItem.objects.all() if run.all_samples else ReviewItem.objects.filter(sample__run_members__run=run)
    return items.order_by("-risk", "created_at", "id")
