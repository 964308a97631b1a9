"""bench/cache: a second run of the real corpus through the response cache.

The 1,871 real posts x 1 annotator (OpenAI-compatible backend against a loopback fake LLM, temperature 0, the
cache on) x 6 domains, with a real fleet agent and its 6 worker processes, on a fresh DATA_DIR, private Redis and
SQLite database. The first run fills the cache; then a reset (`reset_data`, as staff do it) deletes the outcomes
and the second run goes through the cache. Reported for the second run: hit rate, annotations/s (from the launch,
and from the first to the last stored outcome), and how many requests reached the fake server.
Goal: 100 % hits, >= 300 annotations/s, zero server calls.
Run: .venv/bin/python bench/cache.py   (BENCH_POSTS=N: the first N posts only, to try the script)
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

from _setup import ROOT, import_posts, isolated_django, worker_env
from throughput import answer_for

DOMAINS = 6
POSTS = int(os.environ.get("BENCH_POSTS", "0")) or None
TIMEOUT = 900


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
                               f"{agent_log.read_text()[-3000:]}")
        time.sleep(0.05)
    wall = time.monotonic() - started
    span = Outcome.objects.aggregate(first=Min("started_at"), last=Max("created_at"))
    busy = (span["last"] - span["first"]).total_seconds()
    return {"outcomes": expected, "wall_s": wall, "rate_from_launch": expected / wall,
            "busy_s": busy, "rate_busy": expected / busy,
            "hits": Outcome.objects.filter(cached=True).count()}


def main() -> None:
    isolated_django(OUTBOUND_ALLOW="127.0.0.1", FLUSH_EVERY_ROWS="500", FLUSH_EVERY_SECONDS="2")
    from django.conf import settings

    from admin_ops.services.reset import reset_data
    from tests.fake_llm import FakeLLM, start_fake_llm
    from workers_app.models import Annotator, CachedResponse, Worker

    posts = import_posts(POSTS)
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
    with agent_log.open("w") as log:
        agent = subprocess.Popen([sys.executable, "manage.py", "fleet_agent"], cwd=ROOT, env=worker_env(),
                                 stdout=log, stderr=subprocess.STDOUT)
    try:
        time.sleep(3)  # the agent imports Django and Celery once, before it forks
        first = run("first run", expected, agent_log)
        first_calls = len(fake.requests)
        reset_data(actor="bench", annotator=1, backup=False)
        entries = CachedResponse.objects.count()
        load = os.getloadavg()
        second = run("second run", expected, agent_log)
        second_calls = len(fake.requests) - first_calls
    finally:
        Worker.objects.update(desired_state=Worker.Desired.STOPPED)
        agent.send_signal(signal.SIGTERM)
        agent.wait(timeout=120)
    print(f"posts {posts} x {DOMAINS} domains = {expected} outcomes per run, 1 annotator, 6 worker processes")
    print(f"first run: {first['wall_s']:.1f} s from launch ({first['rate_from_launch']:.0f}/s), "
          f"{first_calls} server requests, {entries} cache entries after the reset")
    print(f"second run: hit rate {second['hits'] / expected:.1%} ({second['hits']} of {expected}), "
          f"{second['wall_s']:.1f} s from launch = {second['rate_from_launch']:.0f} annotations/s; first to last "
          f"stored outcome {second['busy_s']:.1f} s = {second['rate_busy']:.0f} annotations/s; "
          f"server requests {second_calls}")
    print(f"load average before the second run: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")


if __name__ == "__main__":
    main()
