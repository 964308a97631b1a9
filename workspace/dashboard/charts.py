"""The dashboard's charts: fleet throughput and queue depth from the per-minute metrics history, the malformed
rate per annotator and what each annotator spent (tokens, cost, cache). Drawn on the server as SVG polylines, each with its numbers in a table."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal

from django.db.models import Sum
from django.utils import timezone

from workers_app.engine.cost import cost_totals
from workers_app.models import Annotator, Run, WorkerMetric

WIDTH, HEIGHT = 600, 120


@dataclass
class Series:
    title: str
    unit: str
    points: list[tuple[str, float]]  # (time label, value), oldest first

    @property
    def peak(self) -> float:
        return max((v for _, v in self.points), default=0)

    @property
    def latest(self) -> float | None:
        return self.points[-1][1] if self.points else None

    @property
    def polyline(self) -> str:
        """SVG points scaled to WIDTH x HEIGHT, the peak at the top."""
        if len(self.points) < 2:
            return ""
        top = self.peak or 1
        step = WIDTH / (len(self.points) - 1)
        return " ".join(f"{i * step:.1f},{HEIGHT - v / top * (HEIGHT - 4) - 2:.1f}"
                        for i, (_, v) in enumerate(self.points))


def _minutes(since) -> list[dict]:
    return list(WorkerMetric.objects.filter(at__gte=since).values("at").annotate(
        throughput=Sum("throughput"), queue=Sum("queue_length")).order_by("at"))


def _bucketed(rows: list[dict], minutes: int, field: str) -> list[tuple[str, float]]:
    """Average of ``field`` per ``minutes``-long bucket."""
    buckets: dict = defaultdict(list)
    for row in rows:
        at = timezone.localtime(row["at"])
        start = at.replace(minute=at.minute - at.minute % minutes)
        buckets[start].append(row[field])
    return [(start.strftime("%H:%M"), round(sum(v) / len(v), 1)) for start, v in sorted(buckets.items())]


def fleet_series() -> list[Series]:
    now = timezone.now()
    day = _minutes(now - timedelta(days=1))
    hour = [row for row in day if row["at"] >= now - timedelta(hours=1)]
    return [Series("Fleet throughput, last hour", "outcomes / min", _bucketed(hour, 1, "throughput")),
            Series("Queue depth, last hour", "messages", _bucketed(hour, 1, "queue")),
            Series("Fleet throughput, last day (15-minute means)", "outcomes / min", _bucketed(day, 15, "throughput")),
            Series("Queue depth, last day (15-minute means)", "messages", _bucketed(day, 15, "queue"))]


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

