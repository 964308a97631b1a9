"""The review queue as a reviewer walks it: the chosen filters (kept from item to item in the query string), the
items before and after one in the queue's order, and the reviewer's own counters."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time

from django.db.models import Count, Q, QuerySet
from django.http import QueryDict
from django.utils import timezone

from workers_app.models import ReviewItem
from workers_app.review.flags import REASONS

STATUSES = {"todo": "to do (open or claimed)", "open": "open", "claimed": "claimed", "reviewed": "reviewed",
            "all": "all"}
DEFAULT = {"status": "todo", "reason": "", "mine": False}
ORDER = ("-risk", "created_at", "id")


@dataclass(frozen=True)
class Filters:
    status: str = "todo"
    reason: str = ""
    mine: bool = False

    @classmethod
    def from_query(cls, query: QueryDict) -> Filters:
        """Unknown values fall back to the defaults: a bad link shows the queue, never an error."""
        status = query.get("status", "todo")
        reason = query.get("reason", "")
        return cls(status if status in STATUSES else "todo", reason if reason in REASONS else "",
                   query.get("mine") == "1")

    @property
    def chosen(self) -> dict:
        return {"status": self.status, "reason": self.reason, "mine": self.mine}

    @property
    def filtered(self) -> bool:
        return self.chosen != DEFAULT

    @property
    def query(self) -> str:
        """The filters as a query string ("" for the defaults), for every link and form of the walk."""
        kept = QueryDict(mutable=True)
        if self.status != "todo":
            kept["status"] = self.status
        if self.reason:
            kept["reason"] = self.reason
        if self.mine:
            kept["mine"] = "1"
        return kept.urlencode()

    @property
    def suffix(self) -> str:
        return f"?{self.query}" if self.query else ""

    def items(self, user) -> QuerySet[ReviewItem]:
        items = ReviewItem.objects.select_related("sample", "claimed_by", "reviewed_by")
        if self.status == "todo":
            items = items.exclude(status=ReviewItem.Status.REVIEWED)
        elif self.status != "all":
            items = items.filter(status=self.status)
        if self.reason:
            # The reason is one of REASONS: its quoted spelling matches only that list element.
            items = items.filter(reasons__icontains=f'"{self.reason}"')
        if self.mine:
            items = items.filter(Q(claimed_by=user) | Q(reviewed_by=user))
        return items.order_by(*ORDER)


def _after(item: ReviewItem) -> Q:
    """Items after ``item`` in the queue's order (higher risk first, then older, then lower id)."""
    return (Q(risk__lt=item.risk) | Q(risk=item.risk, created_at__gt=item.created_at)
            | Q(risk=item.risk, created_at=item.created_at, id__gt=item.pk))


def _before(item: ReviewItem) -> Q:
    return (Q(risk__gt=item.risk) | Q(risk=item.risk, created_at__lt=item.created_at)
            | Q(risk=item.risk, created_at=item.created_at, id__lt=item.pk))


@dataclass(frozen=True)
class Neighbours:
    previous: int | None
    next: int | None
    position: int | None  # 1-based, among the filtered items; None when the item is not (or no longer) one
    count: int


def neighbours(item: ReviewItem, filters: Filters, user) -> Neighbours:
    """The items before and after ``item`` in the filtered queue, also when ``item`` itself has left the filter
    (just reviewed, under "to do"): the walk goes on from where it was. Four small queries."""
    items = filters.items(user)
    following = items.filter(_after(item)).values_list("pk", flat=True).first()
    preceding = items.filter(_before(item)).order_by("risk", "-created_at", "-id").values_list("pk", flat=True).first()
    count = items.count()
    inside = items.filter(pk=item.pk).exists()
    return Neighbours(preceding, following, items.filter(_before(item)).count() + 1 if inside else None, count)


@dataclass(frozen=True)
class Counters:
    reviewed_today: int
    reviewed: int
    claimed: int


def counters(user) -> Counters:
    """What this reviewer has done: one query."""
    midnight = timezone.make_aware(datetime.combine(timezone.localdate(), time.min))
    found = ReviewItem.objects.aggregate(
        reviewed_today=Count("id", filter=Q(reviewed_by=user, reviewed_at__gte=midnight)),
        reviewed=Count("id", filter=Q(reviewed_by=user)),
        claimed=Count("id", filter=Q(status=ReviewItem.Status.CLAIMED, claimed_by=user)))
    return Counters(found["reviewed_today"], found["reviewed"], found["claimed"])
