"""An annotator's budget: what its calls have cost, checked before each call, and the pause once it is reached.

The spend lives in Redis as an integer of 1e-9 currency units per annotator, raised by each paid call the moment
its answer arrives, so every thread of every worker sees it before its next request: a budget is overspent by at
most the requests in flight when it was reached. The counter caches the store (the cost of the annotator's stored
outcomes, plus the calls whose outcomes are on their way): it is rebuilt from the store when missing, and a reset
drops it with the outcomes it deletes.
"""

from __future__ import annotations

import logging
from decimal import Decimal

from django.db.models import Sum
from redis.exceptions import RedisError

from audit.actions import Action
from audit.services import audited
from workers_app.models import Annotator, Outcome, Worker, WorkerEvent
from workers_app.models.pricing import COST_PLACES
from workers_app.redis_client import get_redis

from .keys import PREFIX

log = logging.getLogger(__name__)

REASON = "budget"
# Raise the counter only while it exists: a raise on a missing key would start it from this call's cost alone.
_RAISE_IF_KEPT = "if redis.call('exists', KEYS[1]) == 1 then return redis.call('incrby', KEYS[1], ARGV[1]) end"


class BudgetReached(Exception):
    """The annotator's calls cost its budget already: no further call until it is raised."""


def spent_key(annotator_number: int) -> str:
    return f"{PREFIX}:spent:{annotator_number}"


def _units(amount: Decimal) -> int:
    return int(amount.scaleb(COST_PLACES))


def _amount(units: int) -> Decimal:
    return Decimal(units).scaleb(-COST_PLACES)


def stored_spend(annotator: Annotator) -> Decimal:
    return Outcome.objects.filter(annotator=annotator).aggregate(total=Sum("cost"))["total"] or Decimal(0)


def spent(annotator: Annotator) -> Decimal:
    """What the annotator's calls cost so far: one GET, or the store's SUM when the counter is missing."""
    key = spent_key(annotator.number)
    try:
        units = get_redis().get(key)
        if units is not None:
            return _amount(int(units))
        total = stored_spend(annotator)
        get_redis().set(key, _units(total), nx=True)
        return total
    except RedisError as exc:
        log.warning("annotator %s: spend read from the store (Redis: %s)", annotator.number, exc)
        return stored_spend(annotator)


def forget_spend(annotator_numbers: set[int]) -> None:
    """After their outcomes were deleted: the next check rebuilds the spend from the store."""
    if annotator_numbers:
        get_redis().delete(*(spent_key(number) for number in annotator_numbers))


def charge(annotator: Annotator, cost: Decimal | None) -> None:
    """Add a paid call to the live spend; the store has it once the outcome is stored."""
    if not cost:
        return
    try:
        get_redis().eval(_RAISE_IF_KEPT, 1, spent_key(annotator.number), _units(cost))
    except RedisError as exc:
        log.warning("annotator %s: call not charged in Redis (%s); the next rebuild counts it", annotator.number,
                    exc)


def over_budget(annotator: Annotator) -> Decimal | None:
    """The spend, when the annotator has a budget and its spend has reached it."""
    if annotator.budget is None:
        return None
    used = spent(annotator)
    return used if used >= annotator.budget else None


def check_budget(annotator: Annotator, *, actor: str) -> None:
    """Before each call: raise BudgetReached (and pause the annotator's workers, once) when the budget is spent."""
    used = over_budget(annotator)
    if used is None:
        return
    # A worker's annotator row may be seconds old: a budget raised just before a resume must not pause it again.
    fresh = Annotator.objects.get(pk=annotator.pk)
    if over_budget(fresh) is None:
        return
    pause_for_budget(fresh, used, actor=actor)
    raise BudgetReached(f"annotator {annotator.number} spent {used.normalize():f} of its budget of "
                        f"{fresh.budget.normalize():f}")


def pause_for_budget(annotator: Annotator, used: Decimal, *, actor: str) -> int:
    """Record that the annotator's running workers are to pause (desired state ``paused``, a WorkerEvent with
    reason ``budget``) and return how many; the monitor's sweep tells the live processes and alerts."""
    running = list(Worker.objects.select_related("annotator", "domain").filter(
        annotator=annotator, desired_state=Worker.Desired.RUNNING))
    if not running:
        return 0  # recorded by an earlier call or another thread: no second audit row
    reason = f"{REASON}: spent {used.normalize():f} of {annotator.budget.normalize():f}"
    with audited(Action.BUDGET_REACHED, actor=actor, target=str(annotator),
                 parameters={"spent": str(used), "budget": str(annotator.budget)}) as entry:
        paused = [w for w in running if Worker.objects.filter(pk=w.pk, desired_state=Worker.Desired.RUNNING)
                  .update(desired_state=Worker.Desired.PAUSED)]
        WorkerEvent.objects.bulk_create(WorkerEvent(worker=w, from_state=w.observed_state, to_state=w.observed_state,
                                                    reason=reason, actor=actor) for w in paused)
        entry.detail = {"paused": [w.name for w in paused]}
    return len(paused)
