"""bench/batch: one annotator × 6 domains over the real posts in batch mode and in live mode, against the same loopback
server (tests/fake_batch.py), which speaks the OpenAI-style batch API and answers live chat requests alike.

Both modes run real Celery worker processes (one per domain) on a fresh DATA_DIR, Redis and database each, in the
same invocation, alternating. The server answers a batch COMPLETE_AFTER seconds after its creation and a live
request in LIVE_LATENCY; it reports a token per four characters of the prompt and 12 for the answer, so both modes
pay for the same tokens, at the annotator's price (batch_percent 50 for batch mode). Reported:
  cost_ratio    the batch run's stored cost as a share of the live run's;
  beyond_limit  requests to the server beyond LIMIT in any rolling minute (the annotator's own limit in live mode);
  missing / duplicates  (sample, domain) pairs without an outcome, or with more than one;
  wall_seconds  from queueing to the last outcome stored.
Run: .venv/bin/python bench/batch.py [--runs 1] [--quick]   (--quick: 20 posts, batches answered in 2 s)
     one run of one mode: --mode batch|live, prints JSON
"""

from __future__ import annotations

import argparse
import json
import time
from decimal import Decimal

from _setup import (
    QUICK_POSTS,
    Results,
    arguments,
    import_posts,
    in_fresh_process,
    isolated_django,
    start_celery_workers,
    stop_processes,
)
from throughput import ANSWERS, beyond_limit

LIMIT = 3000  # requests per rolling minute to the server (and the live annotator's own limit)
WINDOW = 60.0
LIVE_LATENCY = 0.05
COMPLETE_AFTER = 60.0
BATCH_SIZE = 1000
FIGURES = {
    "cost_ratio": {"about": "1 annotator × 6 domains, the real posts, OpenAI-style batch API on loopback: the batch "
                            "run's stored cost as a share of the live run's (same tokens, batch price 50 %)",
                   "unit": "%", "goal": "<= 55"},
    "beyond_limit": {"about": "the same, batch mode: requests to the server beyond 3,000 in any rolling minute",
                     "unit": "requests", "goal": "== 0",
                     "baseline": "live mode, its annotator limited to 3,000 requests per minute"},
    "missing_or_duplicate": {"about": "the same, batch mode: (sample, domain) pairs stored not exactly once",
                             "unit": "pairs", "goal": "== 0"},
    "wall_seconds": {"about": "the same, batch mode with batches answered 60 s after creation: from queueing to "
                              "the last outcome stored", "unit": "s",
                     "baseline": "live mode, answers in 50 ms, 3,000 requests per minute"},
}


def answer_for(prompt: str) -> str:
    return next((answer for marker, answer in ANSWERS if marker in prompt), "<<LEVEL_1>>")


def measure(mode: str, *, posts: int | None, complete_after: float, poll_seconds: int) -> dict:
    """One run of ``mode`` in this (fresh) process."""
    isolated_django(OUTBOUND_ALLOW="127.0.0.1", BATCH_POLL_SECONDS=str(poll_seconds))
    from django.db.models import Count, Sum
    from django.utils import timezone

    from tests.fake_batch import serving_fake_batch_api
    from workers_app.engine.keys import WorkerKey
    from workers_app.engine.queues import populate_queues
    from workers_app.models import Annotator, AnnotatorPrice, Batch, Domain, Outcome

    posts = import_posts(posts)
    domains = list(Domain.objects.values_list("slug", flat=True))
    with serving_fake_batch_api(content_for=answer_for, complete_after=complete_after,
                                live_latency=LIVE_LATENCY) as fake:
        Annotator.objects.filter(number=1).update(
            backend=Annotator.Backend.OPENAI_COMPATIBLE, base_url=fake.url, model="fake-model", timeout_seconds=10,
            requests_per_minute=LIMIT, mode=mode, batch_size=BATCH_SIZE)
        AnnotatorPrice.objects.create(annotator=Annotator.objects.get(number=1), valid_from=timezone.localdate(),
                                      input_per_1k=Decimal("0.0025"), output_per_1k=Decimal("0.01"),
                                      batch_percent=Decimal(50))
        workers = start_celery_workers([WorkerKey(1, slug).queue for slug in domains], threads=8)
        try:
            started = time.monotonic()
            populate_queues(1)
            expected = posts * len(domains)
            deadline = started + 1800
            while Outcome.objects.count() < expected:
                if time.monotonic() > deadline:
                    raise TimeoutError(f"{Outcome.objects.count()} of {expected} stored in 1800 s")
                time.sleep(0.5)
            wall = time.monotonic() - started
        finally:
            stop_processes(workers)
        with fake.lock:
            arrivals = sorted(fake.arrived_at)
        pairs = Outcome.objects.values("sample_id", "domain_id").annotate(n=Count("id"))
        return {"mode": mode, "posts": posts, "domains": len(domains), "wall_seconds": round(wall, 1),
                "cost": str(Outcome.objects.aggregate(c=Sum("cost"))["c"]),
                "requests": len(arrivals), "beyond_limit": beyond_limit(arrivals, LIMIT, WINDOW),
                "missing_or_duplicate": expected - sum(1 for p in pairs if p["n"] == 1),
                "batches": Batch.objects.count(), "creates": fake.creates,
                "malformed": Outcome.objects.filter(status="malformed").count()}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--mode", choices=("batch", "live"))
    args = arguments(parser)
    if args.mode:
        shape = {"posts": QUICK_POSTS, "complete_after": 2.0, "poll_seconds": 1} if args.quick else {
            "posts": None, "complete_after": COMPLETE_AFTER, "poll_seconds": 5}
        print(json.dumps(measure(args.mode, **shape)))
        return
    results = Results(__file__, FIGURES, quick=args.quick)
    runs: dict[str, list[dict]] = {"batch": [], "live": []}
    for _ in range(1 if args.quick else args.runs):
        for mode, found in runs.items():
            found.append(in_fresh_process(__file__, "--mode", mode, quick=args.quick))
            print(json.dumps(found[-1]), flush=True)
    batch, live = runs["batch"], runs["live"]
    results.add("cost_ratio", [100 * float(Decimal(b["cost"]) / Decimal(lv["cost"])) for b, lv in zip(batch, live, strict=True)])
    results.add("beyond_limit", [b["beyond_limit"] for b in batch], baseline=[lv["beyond_limit"] for lv in live])
    results.add("missing_or_duplicate", [b["missing_or_duplicate"] for b in batch])
    results.add("wall_seconds", [b["wall_seconds"] for b in batch], baseline=[lv["wall_seconds"] for lv in live])
    results.write()


if __name__ == "__main__":
    main()
