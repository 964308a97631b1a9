"""bench/ratelimit: 6 worker processes of one annotator (its 6 domains) limited to 300 requests/minute,
against the fake OpenAI-compatible server answering in 200 ms and itself enforcing 300 requests per rolling
minute per key with 429s. Reports, over 60 s: requests the server accepted, the most it saw in any rolling
60 s window, and the share of 429s. Baseline in the same run: the same fleet without the shared limiter.
Run: .venv/bin/python bench/ratelimit.py
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time

from _setup import ROOT, import_posts, isolated_django, worker_env

isolated_django()

from tests.fake_llm import FakeLLM, Reply, max_in_window, start_fake_llm
from workers_app.engine.queues import populate_queues
from workers_app.models import Annotator, Domain

LIMIT = 300
SECONDS = 60
BASELINE_SECONDS = 20


def start_workers(env: dict) -> list[subprocess.Popen]:
    from annotation_site.celery import app

    nodes, processes = [], []
    for slug in Domain.objects.values_list("slug", flat=True):
        node = f"annotator_1_{slug}@{socket.gethostname()}"
        nodes.append(node)
        processes.append(subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "annotation_site", "worker", "-Q", f"annotator_1_{slug}", "-n",
             node, "-P", "threads", "-c", "4", "--without-mingle", "--without-gossip", "-l", "ERROR"],
            cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
    while len(app.control.ping(destination=nodes, timeout=0.5)) < len(nodes):
        time.sleep(0.2)
    return processes


def run(fake: FakeLLM, seconds: int, rpm: int) -> dict:
    Annotator.objects.filter(number=1).update(requests_per_minute=rpm)
    fake.statuses.clear()
    fake.accepted_at.clear()
    fake.arrivals.clear()
    workers = start_workers({**worker_env(), "BENCH_KEY": "bench-key"})
    populate_queues(1)
    while not fake.accepted_at:
        time.sleep(0.01)
    first = fake.accepted_at[0]
    time.sleep(max(0.0, first + seconds - time.monotonic()))
    with fake.lock:
        accepted = sorted(t for t in fake.accepted_at if t < first + seconds)
        statuses = dict(fake.statuses)
    for worker in workers:
        worker.kill()
        worker.wait()
    total = sum(statuses.values())
    return {"accepted": len(accepted), "max_window": max_in_window(accepted, 60.0),
            "rejected_429": statuses.get(429, 0), "requests": total}


def main() -> None:
    import_posts()
    fake = FakeLLM(default=Reply(content="<<LEVEL_1>>", delay=0.2), per_key_rpm=LIMIT)
    start_fake_llm(fake)
    os.environ["BENCH_KEY"] = "bench-key"
    Annotator.objects.filter(number=1).update(
        backend=Annotator.Backend.OPENAI_COMPATIBLE, base_url=fake.url, model="fake", api_key_env="BENCH_KEY",
        max_retries=0, timeout_seconds=10)
    limited = run(fake, SECONDS, LIMIT)
    from workers_app.redis_client import get_redis

    get_redis().flushdb()
    baseline = run(fake, BASELINE_SECONDS, 1_000_000)
    print(f"6 worker processes x 4 threads, one annotator; server answers in 200 ms, allows {LIMIT}/rolling min")
    print(f"with the shared limiter ({LIMIT} rpm), {SECONDS} s: accepted {limited['accepted']} "
          f"= {100 * limited['accepted'] / LIMIT:.1f} % of the limit; most in any 60 s window "
          f"{limited['max_window']}; 429s {limited['rejected_429']} of {limited['requests']} requests "
          f"= {100 * limited['rejected_429'] / max(limited['requests'], 1):.2f} %")
    print(f"baseline without it, {BASELINE_SECONDS} s: accepted {baseline['accepted']}; 429s "
          f"{baseline['rejected_429']} of {baseline['requests']} requests "
          f"= {100 * baseline['rejected_429'] / max(baseline['requests'], 1):.1f} %")
    print("goal: >= 95 % of the limit, never above it, 429s <= 1 % of requests")


if __name__ == "__main__":
    main()
