"""bench/cache: a second run of the real corpus through the response cache.

The 1,871 real posts x 1 annotator (OpenAI-compatible backend against a loopback fake LLM, temperature 0, the
cache on) x 6 domains, with a real fleet agent and its 6 worker processes, on a fresh DATA_DIR, private Redis and
SQLite database. The first run fills the cache: every request goes to the fake server (the baseline: the same work
without the cache's help). Then, 3 times, a reset (`reset_data`, as staff do it) deletes the outcomes and the run
is made again through the cache. Reported for those runs: hit rate, annotations/s (from the launch, and from the
first to the last stored outcome), and how many requests reached the fake server.
Goal: 100 % hits, >= 300 annotations/s, zero server calls.
Run: .venv/bin/python bench/cache.py [--runs 3] [--quick]   (--quick: 20 posts, one cached run)
"""

from __future__ import annotations

import argparse
import signal
import time

from _setup import QUICK_POSTS, Results, arguments, import_posts, isolated_django, log_tail, start_agent
from throughput import answer_for

DOMAINS = 6
RUNS = 3
TIMEOUT = 900
FIGURES = {
    "rate": {"about": "1,871 real posts × 1 annotator × 6 domains (6 workers), OpenAI-compatible backend with the "
                      "response cache on, a run after a reset: annotations/s from the launch", "unit": "annotations/s",
             "goal": ">= 300", "baseline": "the first run, filling the cache"},
    "hit_rate": {"about": "the same runs: answers taken from the cache", "unit": "%", "goal": "== 100"},
    "server_requests": {"about": "the same runs: requests that reached the (fake) LLM server", "unit": "requests",
                        "goal": "== 0", "baseline": "the first run, filling the cache"},
}


def run(label: str, expected: int, agent_log) -> dict:
    """Launch annotator 1's six workers and wait until every outcome is stored."""
    from django.db.models import Max, Min

    from workers_app.fleet.rows import select_workers
    from workers_app.fleet.services import launch_workers
    from workers_app.models import Outcome

    started = time.monotonic()
    results = launch_workers(select_workers(1), actor="bench", wait=False)
    assert all(r.ok for r in results), [r for r in results if not r.ok]
    while Outcome.objects.count() < expected:
        if time.monotonic() - started > TIMEOUT:
            raise TimeoutError(f"{label}: {Outcome.objects.count()} of {expected} after {TIMEOUT} s; agent log:\n"
                               f"{log_tail(agent_log)}")
        time.sleep(0.05)
    wall = time.monotonic() - started
    span = Outcome.objects.aggregate(first=Min("started_at"), last=Max("created_at"))
    busy = (span["last"] - span["first"]).total_seconds()
    return {"outcomes": expected, "wall_s": wall, "rate_from_launch": expected / wall,
            "busy_s": busy, "rate_busy": expected / busy,
            "hits": Outcome.objects.filter(cached=True).count()}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=RUNS, help="runs through the cache, each after a reset")
    args = arguments(parser)
    results = Results(__file__, FIGURES, quick=args.quick)
    isolated_django(OUTBOUND_ALLOW="127.0.0.1", FLUSH_EVERY_ROWS="500", FLUSH_EVERY_SECONDS="2")
    from django.conf import settings

    from admin_ops.services.reset import reset_data
    from tests.fake_llm import FakeLLM, start_fake_llm
    from workers_app.models import Annotator, CachedResponse, Worker

    posts = import_posts(QUICK_POSTS if args.quick else None)
    fake = FakeLLM(content_for=answer_for)
    start_fake_llm(fake)
    annotator = Annotator.objects.get(number=1)
    annotator.backend, annotator.base_url, annotator.model = Annotator.Backend.OPENAI_COMPATIBLE, fake.url, "fake"
    annotator.temperature, annotator.cache_responses, annotator.requests_per_minute = 0.0, True, 100_000
    annotator.timeout_seconds = 10
    annotator.full_clean()
    annotator.save()
    expected = posts * DOMAINS
    agent_log = settings.DATA_DIR / "agent.log"
    agent = start_agent(agent_log)
    cached, calls = [], []
    try:
        first = run("first run", expected, agent_log)
        first_calls = len(fake.requests)
        for number in range(1 if args.quick else args.runs):
            reset_data(actor="bench", annotator=1, backup=False)
            entries = CachedResponse.objects.count()
            before = len(fake.requests)
            cached.append(run(f"cached run {number + 1}", expected, agent_log))
            calls.append(len(fake.requests) - before)
    finally:
        Worker.objects.update(desired_state=Worker.Desired.STOPPED)
        agent.send_signal(signal.SIGTERM)
        agent.wait(timeout=120)
    print(f"posts {posts} x {DOMAINS} domains = {expected} outcomes per run, 1 annotator, 6 worker processes")
    print(f"first run: {first['wall_s']:.1f} s from launch ({first['rate_from_launch']:.0f}/s), "
          f"{first_calls} server requests, {entries} cache entries after it")
    for number, (second, second_calls) in enumerate(zip(cached, calls, strict=True), start=1):
        print(f"cached run {number}: hit rate {second['hits'] / expected:.1%} ({second['hits']} of {expected}), "
              f"{second['wall_s']:.1f} s from launch = {second['rate_from_launch']:.0f} annotations/s; first to last "
              f"stored outcome {second['busy_s']:.1f} s = {second['rate_busy']:.0f} annotations/s; "
              f"server requests {second_calls}")
    results.add("rate", [r["rate_from_launch"] for r in cached], baseline=[first["rate_from_launch"]])
    results.add("hit_rate", [100 * r["hits"] / expected for r in cached])
    results.add("server_requests", calls, baseline=[first_calls])
    results.write()


if __name__ == "__main__":
    main()
