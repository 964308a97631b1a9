"""The review queue's adjudications as a reference set of their own (``adjudicated``), kept current: a reviewer's
labels are written into it in the same transaction that marks the item reviewed, and a restore of review items
syncs it from the queue. Its labels are never edited by hand: the queue is their source."""

from __future__ import annotations

from collections.abc import Iterable

from workers_app.models import ADJUDICATED_SET, Domain, ReferenceLabel, ReferenceSet, ReviewItem

PROVENANCE = {
    "kind": ReferenceSet.Kind.ADJUDICATED,
    "description": "The clinical review queue's adjudicated labels, one per reviewed sample and domain; kept "
                   "current by the console as reviewers record them.",
    "source": "this console's clinical review queue",
    "raters": 1,
}


def adjudicated_set() -> ReferenceSet:
    found, _ = ReferenceSet.objects.get_or_create(name=ADJUDICATED_SET, defaults={
        **PROVENANCE, "system": True, "created_by": "system"})
    return found


def sync_adjudicated(samples: Iterable[int] | None = None) -> int:
    """Rewrite the set's labels of ``samples`` (sample ids; None: every sample) from their review items. Call it
    inside the transaction that changed the items. Returns how many labels the set now has for them."""
    reference_set = adjudicated_set()
    items = ReviewItem.objects.filter(status=ReviewItem.Status.REVIEWED).exclude(adjudicated={})
    old = reference_set.labels.all()
    if samples is not None:
        samples = list(samples)
        items, old = items.filter(sample_id__in=samples), old.filter(sample_id__in=samples)
    old.delete()
    domains = dict(Domain.objects.values_list("slug", "pk"))
    rows = [ReferenceLabel(reference_set=reference_set, sample_id=sample_id, domain_id=domains[slug], labels=codes)
            for sample_id, adjudicated in items.values_list("sample_id", "adjudicated")
            for slug, codes in adjudicated.items() if slug in domains and codes]
    ReferenceLabel.objects.bulk_create(rows, batch_size=2000)
    return len(rows)
