"""Reads of reference sets that the command, the pages, the API and the exports share: nothing here changes state."""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass, field

from django.db import connection
from django.db.models import Count

from workers_app.models import ReferenceLabel, ReferenceSet, Sample
from workers_app.models.reference import REFERENCE_NAME


class UnknownReference(LookupError):
    """No reference set of that name; the message lists those there are."""


@dataclass
class ReferenceSummary:
    reference_set: ReferenceSet
    labels: int = 0
    samples: int = 0
    domains: dict[str, int] = field(default_factory=dict)  # slug -> items (samples) labelled in it
    raters: int = 0  # distinct named raters (0: one unnamed label per item)
    most_raters_per_item: int = 0

    @property
    def name(self) -> str:
        return self.reference_set.name

    def as_dict(self) -> dict:
        found = self.reference_set
        return {"name": found.name, "kind": found.kind, "description": found.description, "source": found.source,
                "licence": found.licence, "citation": found.citation, "raters_stated": found.raters,
                "value_map": found.value_map, "file_name": found.file_name, "system": found.system,
                "created_by": found.created_by, "created_at": found.created_at.isoformat(), "labels": self.labels,
                "samples": self.samples, "domains": self.domains, "raters": self.raters,
                "most_raters_per_item": self.most_raters_per_item}


def reference_summaries(sets: list[ReferenceSet] | None = None) -> list[ReferenceSummary]:
    """Every set (or those given) with its counts, in a few grouped queries."""
    sets = list(ReferenceSet.objects.order_by("name")) if sets is None else sets
    found = {s.pk: ReferenceSummary(s) for s in sets}
    rows = ReferenceLabel.objects.filter(reference_set__in=found)
    for row in rows.values("reference_set_id", "domain__slug").annotate(
            n=Count("id"), items=Count("sample_id", distinct=True)).order_by("domain__position", "domain__slug"):
        summary = found[row["reference_set_id"]]
        summary.labels += row["n"]
        summary.domains[row["domain__slug"]] = row["items"]
    for row in rows.values("reference_set_id").annotate(samples=Count("sample_id", distinct=True)):
        found[row["reference_set_id"]].samples = row["samples"]
    named = rows.exclude(rater="").values("reference_set_id").annotate(raters=Count("rater", distinct=True))
    for row in named:
        found[row["reference_set_id"]].raters = row["raters"]
    per_item = rows.values("reference_set_id", "sample_id", "domain_id").annotate(n=Count("id"))
    for row in per_item.order_by():
        summary = found[row["reference_set_id"]]
        summary.most_raters_per_item = max(summary.most_raters_per_item, row["n"])
    return list(found.values())


def reference_by_name(name: object) -> ReferenceSet:
    """The set of that name; UnknownReference naming those there are (a malformed name is never queried)."""
    found = None
    if isinstance(name, str) and REFERENCE_NAME.regex.fullmatch(name):
        found = ReferenceSet.objects.filter(name=name).first()
    if found is None:
        known = ", ".join(ReferenceSet.objects.order_by("name").values_list("name", flat=True)) or "none"
        raise UnknownReference(f"no reference set named {str(name)[:50]!r}; the sets are {known}")
    return found


_LABELS = (f"SELECT sample_id, rater, labels FROM {ReferenceLabel._meta.db_table} "
           "WHERE reference_set_id = %s AND domain_id = %s ORDER BY sample_id, rater")


def reference_labels(reference_set: ReferenceSet, domain_id: int) -> dict[int, list[tuple[str, list[str]]]]:
    """sample id -> [(rater, codes), ...] of one domain, raters in name order. One plain query, each distinct label
    decoded once: a set over a whole corpus has tens of thousands of rows and few distinct labels."""
    found: dict[int, list[tuple[str, list[str]]]] = defaultdict(list)
    decoded: dict[str, list[str]] = {}
    with connection.cursor() as cursor:
        cursor.execute(_LABELS, [reference_set.pk, domain_id])
        rows = cursor.fetchall()  # at once: iterating Django's cursor wrapper costs a generator step per row
    for sample_id, rater, stored in rows:
        key = stored if isinstance(stored, str) else json.dumps(stored)
        if key not in decoded:
            decoded[key] = json.loads(key)
        found[sample_id].append((rater, decoded[key]))
    return dict(found)


def reference_samples(reference_set: ReferenceSet) -> dict[int, str]:
    """sample id -> external id of every sample the set labels."""
    return dict(Sample.objects.filter(reference_labels__reference_set=reference_set).distinct()
                .values_list("pk", "external_id"))
