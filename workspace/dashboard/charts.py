"""The dashboard's charts over the last hour, the last day or the current run: fleet throughput, queue depth, the
malformed share, answer latency (p50 and p95) from the per-minute metrics, and the cost per hour from the stored
outcomes; each drawn on the server (plot.py) with its numbers in a table. Two grouped queries, whatever the fleet."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from django.db.models import F, Q, Sum
from django.db.models.functions import TruncHour, TruncMinute
from django.utils import timezone

from workers_app.engine.cost import cost_totals
from workers_app.models import Annotator, AnnotatorPrice, Outcome, Run, WorkerMetric

from .plot import Line, Plot, draw, time_label
from .plot import number as shown

RANGES = {"hour": "last hour", "day": "last day", "run": "this run"}
BUCKET_MINUTES = (1, 5, 15, 60, 240, 1440)  # the first that gives at most MAX_BUCKETS for the range
MAX_BUCKETS = 96


@dataclass
class Chart:
    title: str
    unit: str
    starts: list[datetime]
    lines: list[Line]
    plot: Plot | None
    note: str = ""  # what the values are, where it is not obvious

    @property
    def rows(self) -> list[tuple[str, list[str]]]:
        span = (self.starts[-1] - self.starts[0]) if self.starts else timedelta(0)
        return [(time_label(start, span), ["—" if line.values[i] is None else shown(line.values[i])
                                           for line in self.lines]) for i, start in enumerate(self.starts)]

    @property
    def latest(self) -> str:
        for position in range(len(self.starts) - 1, -1, -1):
            said = [shown(line.values[position]) for line in self.lines if line.values[position] is not None]
            if said:
                return " / ".join(said)
        return ""


@dataclass(frozen=True)
class Window:
    name: str
    since: datetime
    until: datetime
    bucket: timedelta

    @property
    def span_words(self) -> str:
        return RANGES[self.name]

    def start_of(self, moment: datetime) -> datetime:
        """The start of the bucket holding ``moment``, in local time (buckets of a day start at midnight)."""
        local = timezone.localtime(moment)
        minutes = int(self.bucket.total_seconds() // 60)
        of_day = local.hour * 60 + local.minute
        midnight = local.replace(hour=0, minute=0, second=0, microsecond=0)
        return midnight + timedelta(minutes=of_day - of_day % minutes) if minutes < 1440 else midnight


def window(name: str, run: Run) -> Window:
    now = timezone.now()
    since = {"hour": now - timedelta(hours=1), "day": now - timedelta(days=1)}.get(
        name, run.started_at or run.created_at)
    span_minutes = max(1.0, (now - since).total_seconds() / 60)
    minutes = next((m for m in BUCKET_MINUTES if span_minutes / m <= MAX_BUCKETS), BUCKET_MINUTES[-1])
    return Window(name if name in RANGES else "hour", since, now, timedelta(minutes=minutes))


def _minutes(since: datetime) -> list[dict]:
    """The fleet per recorded minute: outcomes, queued messages, malformed outcomes and the latency percentiles
    weighted by each worker's outcomes (a fleet percentile cannot be made from the workers' own)."""
    with_latency = Q(latency_p50_ms__isnull=False)
    return list(WorkerMetric.objects.filter(at__gte=since).values("at").annotate(
        outcomes=Sum("throughput"), queued=Sum("queue_length"),
        malformed=Sum(F("malformed_rate") * F("throughput")),
        timed=Sum("throughput", filter=with_latency),
        p50=Sum(F("latency_p50_ms") * F("throughput"), filter=with_latency),
        p95=Sum(F("latency_p95_ms") * F("throughput"), filter=with_latency)).order_by("at"))


def _costs(run: Run, since: datetime, hourly: bool) -> list[dict]:
    trunc = TruncHour("created_at") if hourly else TruncMinute("created_at")
    return list(Outcome.objects.filter(run=run, created_at__gte=since, cost__isnull=False).annotate(
        at=trunc).values("at").annotate(cost=Sum("cost")).order_by("at"))


def _share(part: float, whole: float) -> float | None:
    return part / whole if whole else None


def _bucketed(rows: list[dict], win: Window) -> tuple[list[datetime], dict[datetime, list[dict]]]:
    buckets: dict[datetime, list[dict]] = defaultdict(list)
    for row in rows:
        buckets[win.start_of(row["at"])].append(row)
    return sorted(buckets), buckets


def _sum(rows: list[dict], field: str) -> float:
    return float(sum(row[field] or 0 for row in rows))


def _currency() -> str:
    currencies = set(AnnotatorPrice.objects.values_list("currency", flat=True).distinct()[:2])
    return currencies.pop() if len(currencies) == 1 else "cost units"


def fleet_charts(name: str, run: Run) -> tuple[Window, list[Chart]]:
    win = window(name, run)
    starts, buckets = _bucketed(_minutes(win.since), win)
    per = [buckets[start] for start in starts]
    throughput = [_sum(rows, "outcomes") / len(rows) for rows in per]  # mean of the recorded minutes
    queue = [_sum(rows, "queued") / len(rows) for rows in per]
    malformed = [None if (s := _share(_sum(rows, "malformed"), _sum(rows, "outcomes"))) is None else 100 * s
                 for rows in per]
    p50 = [_share(_sum(rows, "p50"), _sum(rows, "timed")) for rows in per]
    p95 = [_share(_sum(rows, "p95"), _sum(rows, "timed")) for rows in per]
    minutes = int(win.bucket.total_seconds() // 60)
    means = "" if minutes == 1 else f" ({minutes}-minute means)"

    def chart(title: str, unit: str, lines: list[Line], note: str = "", at: list[datetime] = starts) -> Chart:
        return Chart(title, unit, at, lines, draw(at, win.bucket, lines, unit), note)

    cost_starts, cost_buckets = _bucketed(_costs(run, win.since, hourly=minutes >= 60), win)
    per_hour = [float(sum((row["cost"] for row in cost_buckets[start]), Decimal(0))) * 60 / minutes
                for start in cost_starts]
    return win, [
        chart(f"Fleet throughput{means}", "outcomes / min", [Line("", throughput)]),
        chart(f"Queue depth{means}", "messages", [Line("", queue)]),
        chart("Malformed share", "%", [Line("", malformed)], "malformed outcomes of all stored in the bucket"),
        chart("Answer latency", "ms", [Line("p50", p50), Line("p95", p95)],
              "each worker's per-minute percentile, weighted by its outcomes"),
        chart(f"Cost per hour in run {run.name}", f"{_currency()} / hour", [Line("", per_hour)],
              "outcomes with a price only (the built-in annotators cost nothing)", cost_starts),
    ]


def spend_per_annotator(run: Run) -> list[dict]:
    """Tokens the backends reported (none for the built-in one), cost where a price applies, and the cache's hits
    and savings, per annotator, over the outcomes of ``run``."""
    sums: dict[int, list] = defaultdict(lambda: [0, 0, Decimal(0), 0, 0, Decimal(0), ""])
    for total in cost_totals(run=run):
        found = sums[total.annotator]
        found[0] += total.prompt_tokens
        found[1] += total.completion_tokens
        found[2] += total.cost
        found[3] += total.priced
        found[4] += total.cached
        found[5] += total.saved
        found[6] = total.currency
    names = dict(Annotator.objects.filter(number__in=sums).values_list("number", "name"))
    spend = []
    for number in sorted(sums):
        prompt, completion, cost, priced, cached, saved, currency = sums[number]
        spend.append({"number": number, "name": names.get(number, ""), "prompt": prompt, "completion": completion,
                      "total": prompt + completion, "cost": f"{cost:.4f} {currency}" if priced else "no price",
                      "cached": cached, "saved": f"{saved:.4f} {currency}" if cached and priced else "—"})
    return spend


def malformed_per_annotator(cells) -> list[dict]:
    """From the live counters the snapshot already read: no query."""
    totals: dict[int, list[int]] = defaultdict(lambda: [0, 0])
    for cell in cells:
        done = totals[cell.annotator]
        done[0] += cell.done
        done[1] += cell.malformed
    return [{"number": number, "done": done, "malformed": bad, "pct": round(100 * bad / done, 1) if done else None}
            for number, (done, bad) in sorted(totals.items())]

