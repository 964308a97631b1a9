"""bench/concurrency: requests in flight that follow the rate limit, against the fixed 4 threads per worker.

One annotator's 6 workers (its 6 domains, launched through the services by a real fleet agent) on the
OpenAI-compatible backend, the real posts queued, against a loopback fake LLM that answers in 2 s and enforces 600
requests per rolling 60 s with 429 + Retry-After. Little's law: 600 rpm x 2 s = 20 requests in flight. Over SECONDS
from the first request it reports: requests accepted (share of 600 rpm), the most that arrived in any rolling 60 s
and how many arrived beyond the limit, the 429s, the mean and most requests in flight at the server, the limiter's
waits, each worker's in-flight target at the end and how many target changes were recorded as WorkerEvents.

Each variant runs from scratch in its own process (fresh DATA_DIR, Redis and database), in the same invocation:
  adaptive  the defaults: each worker between WORKER_MIN_INFLIGHT=1 and WORKER_MAX_INFLIGHT=32, as its controller
            decides;
  fixed4    the setting as it was: 4 threads per worker (WORKER_MIN_INFLIGHT = WORKER_MAX_INFLIGHT = 4, so the
            pool, the prefetch and the gate are all 4).
Both with all 6 workers busy, and again with only 2 of them given work (--busy-few 2), where fixed threads leave
most of the rate limit unused. The results file holds adaptive's figures with fixed4's, same run, as baseline.
Run: .venv/bin/python bench/concurrency.py [--seconds 180] [--runs 1] [--domains 6] [--busy-few 2] [--quick]
     (--quick: 20 posts, 2 workers busy, 3 s, one run of each variant;
      one run of one variant: --variant NAME, prints JSON)
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import time

import psutil
from _setup import (
    QUICK_POSTS,
    Results,
    arguments,
    import_posts,
    in_fresh_process,
    isolated_django,
    log_tail,
    start_agent,
    worker_env,
)
from throughput import _kill, _terminated, answer_for, beyond_limit

from tests.fake_llm import max_in_window

LIMIT = 600  # requests per rolling minute, enforced by the fake server and set as the annotator's limit
WINDOW = 60.0
LATENCY = 2.0
VARIANTS = {"adaptive": {}, "fixed4": {"WORKER_MIN_INFLIGHT": "4", "WORKER_MAX_INFLIGHT": "4"}}
FIXED4 = "fixed 4 threads per worker"
FIGURES = {
    "accepted": {"about": "one annotator's 6 workers, all busy, adaptive requests in flight, fake LLM answering in 2 s "
                          "and allowing 600 per rolling minute, 180 s: requests accepted, share of 600 rpm",
                 "unit": "%", "goal": ">= 90", "baseline": FIXED4},
    "max_in_60s": {"about": "the same: most requests that arrived in any rolling 60 s", "unit": "requests",
                   "goal": "<= 600", "baseline": FIXED4},
    "accepted_few_busy": {"about": "the same with only 2 of the 6 workers given work: accepted, share of 600 rpm",
                          "unit": "%", "goal": ">= 90", "baseline": FIXED4},
}


def measure_variant(name: str, seconds: int, domains: int, posts: int | None = None) -> dict:
    """One run in this (fresh) process: the annotator's workers for ``seconds`` from the first request."""
    signal.signal(signal.SIGTERM, _terminated)
    data_dir = isolated_django(OUTBOUND_ALLOW="127.0.0.1")
    from tests.fake_llm import FakeLLM, Reply, start_fake_llm
    from workers_app.engine.live import heartbeat_key
    from workers_app.engine.ratelimit import counters_key
    from workers_app.fleet.rows import key_of, select_workers
    from workers_app.fleet.services import launch_workers
    from workers_app.models import Annotator, Worker, WorkerEvent
    from workers_app.redis_client import get_redis

    posts = import_posts(posts)
    fake = FakeLLM(default=Reply(delay=LATENCY), per_key_rpm=LIMIT, window_seconds=WINDOW, content_for=answer_for)
    start_fake_llm(fake)
    os.environ["LLM_KEY_BENCH"] = "bench-key"
    Annotator.objects.filter(number=1).update(
        backend=Annotator.Backend.OPENAI_COMPATIBLE, base_url=fake.url, model="fake", api_key_env="LLM_KEY_BENCH",
        requests_per_minute=LIMIT, timeout_seconds=10)
    workers = select_workers(1)[:domains]
    agent_log = data_dir / "agent.log"
    agent = start_agent(agent_log, env={**worker_env(), **VARIANTS[name]})
    try:
        load_before = os.getloadavg()[0]
        psutil.cpu_percent()
        results = launch_workers(workers, actor="bench", wait=False)
        assert all(r.ok for r in results), [r for r in results if not r.ok]
        give_up = time.monotonic() + 120
        while not fake.arrived_at:
            if time.monotonic() > give_up or agent.poll() is not None:
                raise RuntimeError(f"no request reached the fake LLM; agent log:\n{log_tail(agent_log)}")
            time.sleep(0.01)
        first = min(times[0] for times in list(fake.arrived_at.values()) if times)
        time.sleep(max(0.0, first + seconds - time.monotonic()))
        with fake.lock:
            arrived = sorted(t for times in fake.arrived_at.values() for t in times if t < first + seconds)
            refused = sorted(t for times in fake.limited_at.values() for t in times if t < first + seconds)
        cpu, load_after = psutil.cpu_percent(), os.getloadavg()[0]
        client = get_redis()
        targets = {key_of(w).domain: client.hget(heartbeat_key(key_of(w)), "inflight_target") for w in workers}
        waits = int(client.hget(counters_key(1), "ratelimit_waits") or 0)
        events = WorkerEvent.objects.filter(worker__annotator__number=1, reason__startswith="in flight").count()
        grown = [e.reason for e in WorkerEvent.objects.filter(worker__annotator__number=1,
                                                              reason__startswith="in flight").order_by("at")[:6]]
        running = Worker.objects.filter(annotator__number=1, observed_state="running").count()
    finally:
        for pid in Worker.objects.exclude(pid=None).values_list("pid", flat=True):
            _kill(pid)
        _kill(agent.pid)
        agent.wait()
    accepted = len(arrived) - len(refused)
    return {"variant": name, "posts": posts, "workers": len(workers), "running": running, "seconds": seconds,
            "requests": len(arrived), "accepted": accepted, "rejected_429": len(refused),
            "share": accepted / (LIMIT * seconds / 60), "max_in_60s": max_in_window(arrived, WINDOW),
            "beyond_limit": beyond_limit(arrived, LIMIT, WINDOW),
            "mean_in_flight": round(accepted * LATENCY / seconds, 1),
            "max_in_flight": max_in_window(arrived, LATENCY), "waits": waits, "targets": targets,
            "target_events": events, "first_events": grown, "cpu_percent": cpu, "load_before": load_before,
            "load_after": load_after}


def describe(run: dict) -> str:
    return (f"{run['variant']}: accepted {run['accepted']} = {100 * run['share']:.1f} % of {LIMIT} rpm; most in any "
            f"rolling 60 s {run['max_in_60s']} (limit {LIMIT}), beyond the limit {run['beyond_limit']}, 429s "
            f"{run['rejected_429']} of {run['requests']}; in flight at the server: mean {run['mean_in_flight']}, "
            f"most {run['max_in_flight']}; limiter waits {run['waits']}; targets at the end {run['targets']}; "
            f"{run['target_events']} target change(s) recorded; CPU {run['cpu_percent']:.0f} %, load "
            f"{run['load_before']:.1f} -> {run['load_after']:.1f}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=int, default=180)
    parser.add_argument("--runs", type=int, default=1, help="runs of each variant and number of busy workers")
    parser.add_argument("--domains", type=int, default=6, choices=range(1, 7), help="workers with work")
    parser.add_argument("--busy-few", type=int, default=2, choices=range(7),
                        help="also measure with only this many workers given work (0: do not)")
    parser.add_argument("--variant", choices=sorted(VARIANTS))
    args = arguments(parser)
    if args.variant:
        print(json.dumps(measure_variant(args.variant, args.seconds, args.domains,
                                         QUICK_POSTS if args.quick else None)))
        return
    results = Results(__file__, FIGURES, quick=args.quick)
    # The numbers of busy workers measured: all of them, then (unless --busy-few 0) only a few.
    busy = [args.domains, *([args.busy_few] if args.busy_few not in (0, args.domains) else [])]
    seconds, busy = (3, [2]) if args.quick else (args.seconds, busy)
    runs: dict[tuple[str, int], list[dict]] = {(name, domains): [] for domains in busy for name in VARIANTS}
    for _ in range(1 if args.quick else args.runs):
        for (name, domains), found in runs.items():
            found.append(in_fresh_process(__file__, "--variant", name, "--seconds", str(seconds), "--domains",
                                          str(domains), quick=args.quick))
            print(json.dumps(found[-1]), flush=True)
    print(f"one annotator; fake LLM answers in {LATENCY:.0f} s and allows {LIMIT} per rolling {WINDOW:.0f} s; "
          f"{seconds} s from the first request; {psutil.cpu_count()} CPUs")
    for found in runs.values():
        for run in found:
            print(f"{run['workers']} busy: {describe(run)}")
    all_busy = busy[0]
    results.add("accepted", [100 * r["share"] for r in runs["adaptive", all_busy]],
                baseline=[100 * r["share"] for r in runs["fixed4", all_busy]])
    results.add("max_in_60s", [r["max_in_60s"] for r in runs["adaptive", all_busy]],
                baseline=[r["max_in_60s"] for r in runs["fixed4", all_busy]])
    if len(busy) > 1:
        results.add("accepted_few_busy", [100 * r["share"] for r in runs["adaptive", busy[1]]],
                    baseline=[100 * r["share"] for r in runs["fixed4", busy[1]]])
    results.write()


if __name__ == "__main__":
    main()
