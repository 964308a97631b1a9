"""The review queue's part of the beat sweep: derive lost flags from the store now and then, alert once for each
new LEVEL_4 item, and resolve that alert when the item is reviewed."""

from __future__ import annotations

from django.utils import timezone

from workers_app.models import Alert, ReviewItem
from workers_app.redis_client import get_redis
from workers_app.review.flags import CRITICAL_RISK, SYNC_THROTTLE_KEY, sync_review_items

from .alerts import Incident, sync_alerts

KIND = "review_level_4"
SYNC_EVERY_SECONDS = 60  # a full derivation reads every urgency outcome: once a minute, not every 5 s sweep


def _key(item_id: int) -> str:
    return f"{KIND}:{item_id}"


def _incident(item: ReviewItem) -> Incident:
    return Incident(_key(item.pk), KIND, f"sample {item.sample.external_id} was rated LEVEL_4: a clinician must read "
                                         f"it first (review item {item.pk}, /review/{item.pk}/)")


def review_sweep() -> None:
    if get_redis().set(SYNC_THROTTLE_KEY, 1, nx=True, ex=SYNC_EVERY_SECONDS):
        sync_review_items()
    alert_level_4_items()


def alert_level_4_items() -> None:
    """One alert per LEVEL_4 item, ever: ``alerted_at`` is set by a conditional UPDATE before the alert opens, so
    two sweeps at once (or a later sweep) never alert an item twice. Two small queries when nothing changed."""
    candidates = ReviewItem.objects.select_related("sample").filter(risk__gte=CRITICAL_RISK, alerted_at__isnull=True)
    fresh = [item for item in candidates.exclude(status=ReviewItem.Status.REVIEWED)
             if ReviewItem.objects.filter(pk=item.pk, alerted_at__isnull=True).update(alerted_at=timezone.now())]
    alerted = {int(key.rpartition(":")[2]) for key in Alert.objects.filter(
        kind=KIND, resolved_at__isnull=True).values_list("key", flat=True)}
    pending = set(ReviewItem.objects.filter(pk__in=alerted).exclude(status=ReviewItem.Status.REVIEWED)
                  .values_list("pk", flat=True)) if alerted else set()
    if not fresh and pending == alerted:
        return
    # Reviewed (or deleted) items' alerts resolve: sync_alerts resolves every open one of KIND not listed here.
    still_open = [Incident(_key(pk), KIND, "") for pk in pending]
    sync_alerts([*map(_incident, fresh), *still_open], scope={KIND})
