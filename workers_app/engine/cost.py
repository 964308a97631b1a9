"""What a call costs (its tokens at the price valid on its day) and what the stored outcomes cost altogether."""

from __future__ import annotations

import threading
import time
from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal

from django.db.models import Count, Q, Sum
from django.db.models.functions import TruncDate
from django.utils import timezone

from workers_app.models import AnnotatorPrice, Outcome, Run
from workers_app.models.pricing import COST_PLACES

from .backends import Completion

PRICE_CACHE_SECONDS = 2.0  # a new price reaches running workers within this, like the catalogue rows
QUANTUM = Decimal(1).scaleb(-COST_PLACES)

_prices: dict[int, tuple[float, list[AnnotatorPrice]]] = {}
_lock = threading.Lock()


def _price_versions(annotator_id: int) -> list[AnnotatorPrice]:
    """The annotator's prices, newest first, re-read at most every PRICE_CACHE_SECONDS."""
    now = time.monotonic()
    with _lock:
        cached = _prices.get(annotator_id)
    if cached is not None and now - cached[0] < PRICE_CACHE_SECONDS:
        return cached[1]
    versions = list(AnnotatorPrice.objects.filter(annotator_id=annotator_id).order_by("-valid_from"))
    with _lock:
        _prices[annotator_id] = (now, versions)
    return versions


def forget_cached_prices() -> None:
    with _lock:
        _prices.clear()


def price_on(annotator_id: int, day: date) -> AnnotatorPrice | None:
    return next((p for p in _price_versions(annotator_id) if p.valid_from <= day), None)


def cost_of(price: AnnotatorPrice | None, prompt_tokens: int | None, completion_tokens: int | None,
            cache_read_tokens: int | None = None, cache_write_tokens: int | None = None, *,
            batch: bool = False) -> Decimal | None:
    """tokens / 1000 x price, exact; None without a price or without both token counts (the built-in backend).

    Prompt-cache tokens are part of the prompt tokens (OpenAI's convention, which LiteLLM and vLLM follow) and are
    charged at their own prices, or at the input price where the price version has none: never at 0 unless staff
    set 0. A provider that reports them apart from the prompt tokens (their sum exceeds it) has them added on top.
    A ``batch`` call costs the price version's batch percentage of that.
    """
    if price is None or prompt_tokens is None or completion_tokens is None:
        return None
    read, write = cache_read_tokens or 0, cache_write_tokens or 0
    plain = prompt_tokens - read - write if read + write <= prompt_tokens else prompt_tokens
    read_price = price.input_per_1k if price.cache_read_per_1k is None else price.cache_read_per_1k
    write_price = price.input_per_1k if price.cache_write_per_1k is None else price.cache_write_per_1k
    total = (plain * price.input_per_1k + read * read_price + write * write_price
             + completion_tokens * price.output_per_1k)
    if batch:
        total = total * price.batch_percent / 100
    return (total / 1000).quantize(QUANTUM)


def call_cost(annotator_id: int, completion: Completion, at: datetime | None = None, *,
              batch: bool = False) -> Decimal | None:
    day = timezone.localdate(at or timezone.now())
    return cost_of(price_on(annotator_id, day), completion.prompt_tokens, completion.completion_tokens,
                   completion.cache_read_tokens, completion.cache_write_tokens, batch=batch)


def add_costs(total: Decimal | None, cost: Decimal | None) -> Decimal | None:
    """Costs of the calls of one outcome: unknown only while every call's cost is unknown."""
    if total is None:
        return cost
    return total if cost is None else total + cost


@dataclass
class CostTotal:
    annotator: int
    domain: str
    outcomes: int = 0
    priced: int = 0  # outcomes with a known cost
    cost: Decimal = Decimal(0)
    cached: int = 0
    saved: Decimal = Decimal(0)  # what the cached answers would have cost on the day they were stored
    currency: str = ""
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cache_read_tokens: int = 0  # of the prompt tokens, those the provider's prompt cache served or stored
    cache_write_tokens: int = 0

    @property
    def hit_rate(self) -> float | None:
        return self.cached / self.outcomes if self.outcomes else None


def _filtered(annotator: int | None, domain: str | None, run: Run | None):
    outcomes = Outcome.objects.all() if run is None else Outcome.objects.filter(run=run)
    if annotator is not None:
        outcomes = outcomes.filter(annotator__number=annotator)
    if domain is not None:
        outcomes = outcomes.filter(domain__slug=domain)
    return outcomes


def _currencies() -> dict[int, str]:
    """Each annotator's currency: that of its newest price (prices of one annotator share one)."""
    found: dict[int, str] = {}
    for number, currency in AnnotatorPrice.objects.order_by("-valid_from").values_list("annotator__number",
                                                                                       "currency"):
        found.setdefault(number, currency)
    return found


def cost_totals(*, annotator: int | None = None, domain: str | None = None,
                run: Run | None = None) -> list[CostTotal]:
    """Per (annotator, domain): outcomes, their cost, cached answers and the money those saved, in the
    annotator's currency, over one run's outcomes (every run's when ``run`` is None). Two grouped queries,
    whatever the number of outcomes."""
    outcomes = _filtered(annotator, domain, run)
    totals: dict[tuple[int, str], CostTotal] = {}
    for row in outcomes.values("annotator__number", "domain__slug").annotate(
            n=Count("id"), priced=Count("cost"), cost=Sum("cost"), cached=Count("id", filter=Q(cached=True)),
            prompt=Sum("prompt_tokens"), completion=Sum("completion_tokens"), read=Sum("cache_read_tokens"),
            write=Sum("cache_write_tokens")):
        key = (row["annotator__number"], row["domain__slug"])
        totals[key] = CostTotal(*key, outcomes=row["n"], priced=row["priced"],
                                cost=(row["cost"] or Decimal(0)).quantize(QUANTUM), cached=row["cached"],
                                prompt_tokens=row["prompt"] or 0, completion_tokens=row["completion"] or 0,
                                cache_read_tokens=row["read"] or 0, cache_write_tokens=row["write"] or 0)
    for key, saved in _saved(outcomes).items():
        totals[key].saved = saved
    currencies = _currencies()
    for total in totals.values():
        total.currency = currencies.get(total.annotator, "")
    return sorted(totals.values(), key=lambda t: (t.annotator, t.domain))


def _saved(outcomes) -> dict[tuple[int, str], Decimal]:
    """A cached answer saved what its tokens cost at the price of the day it was stored."""
    ids = dict(AnnotatorPrice.objects.values_list("annotator__number", "annotator_id").distinct())
    saved: dict[tuple[int, str], Decimal] = defaultdict(Decimal)
    for row in outcomes.filter(cached=True).annotate(day=TruncDate("created_at")).values(
            "annotator__number", "domain__slug", "day").annotate(inp=Sum("prompt_tokens"),
                                                                 out=Sum("completion_tokens")):
        number = row["annotator__number"]
        price = price_on(ids[number], row["day"]) if number in ids else None
        saved[(number, row["domain__slug"])] += cost_of(price, row["inp"], row["out"]) or Decimal(0)
    return saved
