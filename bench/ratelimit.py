"""bench/ratelimit: 6 worker processes of one annotator (its 6 domains) limited to 300 requests/minute,
against the fake OpenAI-compatible server answering in 200 ms and itself enforcing 300 requests per rolling
minute per key with 429s. Reports, over 60 s from the first accepted request: requests the server accepted (share
of the limit), the most requests sent in any rolling 60 s window, and the share of 429s. Baseline in the same run,
alternating with it, over the same 60 s: the same fleet without the shared limiter (its limit out of reach).
Run: .venv/bin/python bench/ratelimit.py [--runs 3] [--quick]
     (--quick: 20 posts, 2 domains' workers, 3 s, one run of each)
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

from _setup import QUICK_POSTS, Results, arguments, import_posts, isolated_django, start_celery_workers, worker_env

isolated_django(OUTBOUND_ALLOW="127.0.0.1")

from tests.fake_llm import FakeLLM, Reply, max_in_window, start_fake_llm
from workers_app.engine.queues import populate_queues
from workers_app.models import Annotator, Domain, Outcome
from workers_app.redis_client import get_redis

LIMIT = 300
SECONDS = 60
RUNS = 3
UNLIMITED = 1_000_000
WITHOUT = "without the shared limiter"
FIGURES = {
    "accepted": {"about": "6 worker processes of one annotator at 300 rpm against a server allowing 300 per "
                          "rolling minute and answering in 200 ms, 60 s: requests accepted, share of the limit",
                 "unit": "%", "goal": ">= 95", "baseline": WITHOUT},
    "max_in_60s": {"about": "the same: most requests sent in any rolling 60 s", "unit": "requests", "goal": "<= 300",
                   "baseline": WITHOUT},
    "rejected_429": {"about": "the same: requests refused with 429", "unit": "%", "goal": "<= 1",
                     "baseline": WITHOUT},
}


def run(fake: FakeLLM, seconds: int, rpm: int, domains: int) -> dict:
    """One run from a clean slate: no outcome, empty Redis (queues, limiter), a fresh server window."""
    Outcome.objects.all().delete()
    get_redis().flushdb()
    Annotator.objects.filter(number=1).update(requests_per_minute=rpm)
    with fake.lock:
        fake.statuses.clear()
        fake.accepted_at.clear()
        fake.arrived_at.clear()
        fake.limited_at.clear()
        fake.arrivals.clear()
    queues = [f"annotator_1_{slug}" for slug in Domain.objects.values_list("slug", flat=True)[:domains]]
    workers = start_celery_workers(queues, env={**worker_env(), "LLM_KEY_BENCH": "bench-key"})
    try:
        populate_queues(1)
        deadline = time.monotonic() + 120
        while not fake.accepted_at:
            if time.monotonic() > deadline:
                raise TimeoutError("no request reached the fake server within 120 s")
            time.sleep(0.01)
        first = fake.accepted_at[0]
        time.sleep(max(0.0, first + seconds - time.monotonic()))
        with fake.lock:
            accepted = [t for t in fake.accepted_at if t < first + seconds]
            sent = sorted(t for times in fake.arrived_at.values() for t in times if t < first + seconds)
            refused = [t for times in fake.limited_at.values() for t in times if t < first + seconds]
    finally:
        for worker in workers:
            worker.kill()  # at once: requests still in flight would land after the measured window
            worker.wait()
    return {"accepted": 100 * len(accepted) / (LIMIT * seconds / 60), "max_in_60s": max_in_window(sent, 60.0),
            "rejected_429": 100 * len(refused) / max(len(sent), 1), "requests": len(sent)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=RUNS)
    args = arguments(parser)
    results = Results(__file__, FIGURES, quick=args.quick)
    runs, seconds, domains = (1, 3, 2) if args.quick else (args.runs, SECONDS, 6)
    import_posts(QUICK_POSTS if args.quick else None)
    fake = FakeLLM(default=Reply(content="<<LEVEL_1>>", delay=0.2), per_key_rpm=LIMIT)
    start_fake_llm(fake)
    os.environ["LLM_KEY_BENCH"] = "bench-key"
    Annotator.objects.filter(number=1).update(
        backend=Annotator.Backend.OPENAI_COMPATIBLE, base_url=fake.url, model="fake", api_key_env="LLM_KEY_BENCH",
        max_retries=0, timeout_seconds=10)
    limited, unlimited = [], []
    for _ in range(runs):
        limited.append(run(fake, seconds, LIMIT, domains))
        unlimited.append(run(fake, seconds, UNLIMITED, domains))
    print(f"{domains} worker processes x 4 threads, one annotator; server answers in 200 ms, allows {LIMIT}/rolling "
          "min; "
          f"{seconds} s per run, {runs} run(s) of each")
    for label, found in (("with the shared limiter", limited), (WITHOUT, unlimited)):
        def median(field: str, found=found) -> float:
            return statistics.median(r[field] for r in found)

        print(f"{label}: accepted {median('accepted'):.1f} % of the limit; most sent in any 60 s "
              f"{median('max_in_60s'):.0f}; 429s {median('rejected_429'):.2f} % of "
              f"{median('requests'):.0f} requests (medians)")
    for name in FIGURES:
        results.add(name, [r[name] for r in limited], baseline=[r[name] for r in unlimited])
    results.write()


if __name__ == "__main__":
    main()
