"""Budgets of an annotator and of a run: what their calls have cost, checked before each call, and the pause once
one is reached.

The spend lives in Redis as an integer of 1e-9 currency units per payer (an annotator, a run), raised by each paid
call the moment its answer arrives, so every thread of every worker sees it before its next request: a budget is
overspent by at most the requests in flight when it was reached. The counter caches the store (the cost of the
payer's stored outcomes, plus the calls whose outcomes are on their way): it is rebuilt from the store when
missing, and a reset drops it with the outcomes it deletes.

A provider batch (batch mode) reserves its worst case before it is submitted: a batch that would take a payer past
its budget is not submitted (``refuse_past_budget``); else the batch's row records the reservation, which the spend
counts until the batch ends and settles on its actual cost.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from decimal import Decimal

from django.db.models import QuerySet, Sum
from redis.exceptions import RedisError

from audit.actions import Action
from workers_app.models import Annotator, Batch, Outcome, Run, Worker
from workers_app.models.pricing import COST_PLACES
from workers_app.redis_client import get_redis

from .keys import redis_key
from .pauses import record_pause, running_workers

log = logging.getLogger(__name__)

REASON = "budget"
# Raise the counter only while it exists: a raise on a missing key would start it from this call's cost alone.
_RAISE_IF_KEPT = "if redis.call('exists', KEYS[1]) == 1 then return redis.call('incrby', KEYS[1], ARGV[1]) end"


class BudgetReached(Exception):
    """A payer's calls cost its budget already: no further call until it is raised."""


@dataclass(frozen=True)
class Payer:
    """Whose calls a budget limits: an annotator (every run) or a run (every annotator)."""

    label: str
    key: str
    budget: Decimal | None
    outcomes: QuerySet
    workers: QuerySet
    batches: QuerySet  # its provider batches, whose reservations count until they end

    @classmethod
    def of_annotator(cls, annotator: Annotator) -> Payer:
        return cls(str(annotator), spent_key(annotator.number), annotator.budget,
                   Outcome.objects.filter(annotator=annotator), Worker.objects.filter(annotator=annotator),
                   Batch.objects.filter(annotator=annotator))

    @classmethod
    def of_run(cls, run: Run) -> Payer:
        workers = Worker.objects.all() if run.all_samples else Worker.objects.filter(
            annotator__number__in=run.annotators, domain__slug__in=run.domains)
        return cls(f"run {run.name}", run_spent_key(run.pk), run.budget, Outcome.objects.filter(run=run), workers,
                   Batch.objects.filter(run=run))


def spent_key(annotator_number: int) -> str:
    return redis_key("spent", annotator_number)


def run_spent_key(run_id: int) -> str:
    return redis_key("spent", "run", run_id)


def _units(amount: Decimal) -> int:
    return int(amount.scaleb(COST_PLACES))


def _amount(units: int) -> Decimal:
    return Decimal(units).scaleb(-COST_PLACES)


def _stored(payer: Payer) -> Decimal:
    reserved = payer.batches.exclude(state=Batch.State.ENDED).aggregate(total=Sum("reserved"))["total"]
    return (payer.outcomes.aggregate(total=Sum("cost"))["total"] or Decimal(0)) + (reserved or Decimal(0))


def spent_by(payer: Payer) -> Decimal:
    """What the payer's calls cost so far: one GET, or the store's SUM when the counter is missing."""
    try:
        units = get_redis().get(payer.key)
        if units is not None:
            return _amount(int(units))
        total = _stored(payer)
        get_redis().set(payer.key, _units(total), nx=True)
        return total
    except RedisError as exc:
        log.warning("%s: spend read from the store (Redis: %s)", payer.label, exc)
        return _stored(payer)


def spent(annotator: Annotator) -> Decimal:
    return spent_by(Payer.of_annotator(annotator))


def forget_spend(annotator_numbers: set[int], run: Run | None = None) -> None:
    """After their outcomes were deleted: the next check rebuilds the spend from the store."""
    keys = [spent_key(number) for number in annotator_numbers] + ([run_spent_key(run.pk)] if run else [])
    if keys:
        get_redis().delete(*keys)


def charge(annotator: Annotator, run: Run, cost: Decimal | None) -> None:
    """Add a paid call to the live spends; the store has it once the outcome is stored."""
    if not cost:
        return
    try:
        for key in (spent_key(annotator.number), run_spent_key(run.pk)):
            get_redis().eval(_RAISE_IF_KEPT, 1, key, _units(cost))
    except RedisError as exc:
        log.warning("%s: call not charged in Redis (%s); the next rebuild counts it", annotator, exc)


def refuse_past_budget(annotator: Annotator, run: Run, amount: Decimal) -> None:
    """Before a provider batch is recorded: raise BudgetReached if its worst case ``amount`` would take the
    annotator or the run past its budget. The caller records the batch with its reservation, then ``charge``s it:
    a kill between the two leaves a batch still submitting, whose resumption rebuilds the spend from the store."""
    for row, payer_of in ((annotator, Payer.of_annotator), (run, Payer.of_run)):
        payer = payer_of(type(row).objects.get(pk=row.pk))
        if payer.budget is None:
            continue
        used = spent_by(payer)
        if used + amount > payer.budget:
            raise BudgetReached(f"{payer.label} spent {used.normalize():f} of its budget of "
                                f"{payer.budget.normalize():f}: a batch whose worst case costs "
                                f"{amount.normalize():f} would exceed it")


def settle(annotator: Annotator, run: Run, reserved: Decimal, actual: Decimal) -> None:
    """A provider batch ended: its spend becomes its actual cost instead of its reservation."""
    charge(annotator, run, actual - reserved)


def over_budget(payer: Payer) -> Decimal | None:
    """The spend, when the payer has a budget and its spend has reached it."""
    if payer.budget is None:
        return None
    used = spent_by(payer)
    return used if used >= payer.budget else None


def check_budget(annotator: Annotator, run: Run, *, actor: str) -> None:
    """Before each call: raise BudgetReached (and pause the payer's workers, once) when the annotator's or the run's
    budget is spent. Without budgets this reads nothing."""
    for row, payer_of in ((annotator, Payer.of_annotator), (run, Payer.of_run)):
        if row.budget is None or over_budget(payer_of(row)) is None:
            continue
        # A worker's rows may be seconds old: a budget raised just before a resume must not pause it again.
        payer = payer_of(type(row).objects.get(pk=row.pk))
        used = over_budget(payer)
        if used is None:
            continue
        pause_for_budget(payer, used, actor=actor)
        raise BudgetReached(f"{payer.label} spent {used.normalize():f} of its budget of "
                            f"{payer.budget.normalize():f}")


def pause_for_budget(payer: Payer, used: Decimal, *, actor: str) -> int:
    """Record that the payer's running workers are to pause (desired state ``paused``, a WorkerEvent with
    reason ``budget``) and return how many; the monitor's sweep tells the live processes and alerts."""
    running = running_workers(payer.workers)
    if not running:
        return 0  # recorded by an earlier call or another thread: no second audit row
    reason = f"{REASON}: {payer.label} spent {used.normalize():f} of {payer.budget.normalize():f}"
    return len(record_pause(running, reason, action=Action.BUDGET_REACHED, actor=actor, target=payer.label,
                            parameters={"spent": str(used), "budget": str(payer.budget)}))
