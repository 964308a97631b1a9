"""bench/throughput: the whole fleet at its rate limits.

All 30 workers (5 annotators x 6 domains, launched through the services by a real fleet agent) on the
OpenAI-compatible backend, 1,871 real posts queued, against a loopback fake LLM that answers in 300 ms and enforces
each annotator's own API key's limit of 600 requests per rolling 60 s with 429 + Retry-After. Over 2 minutes from
the first request it reports per annotator and in total: requests accepted (share of 5 x 600 rpm), the most
requests (accepted or not) that arrived in any rolling 60 s window and how many arrived beyond the limit in their
window, the share of 429s, the largest number in any 1 s (how bursty), and the limiter's waits.

Each run starts from scratch in its own process (fresh DATA_DIR, Redis and database). Variants, measured in the
same invocation, alternating:
  paced    the shared Redis limiter: at most 600 requests in any 60.25 s, one slot every 100 ms (and, where
           workers send within their slot, each request counted from its answer);
  sliding  the baseline, the limiter as it was: the same sliding window of slot times, without pacing and without
           answer times, so each minute's budget goes out in a burst as fast as the workers can send it (set in
           the agent before it forks the workers);
  none     no shared limiter (the limit raised out of reach): the workers rely on 429s and Retry-After alone
           (printed only: not run unless named in --variants).
The results file holds paced's figures, with sliding's as their baseline.
Run: .venv/bin/python bench/throughput.py [--runs 3] [--variants paced,sliding] [--quick]
     (--quick: 20 posts, one annotator's first 2 workers, 3 s, one run of each;
      one run of one variant: --variant NAME, prints JSON)
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import sys
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
)

from tests.fake_llm import max_in_window

ANNOTATORS = 5
LIMIT = 600  # requests per rolling minute, per annotator (API key)
WINDOW = 60.0
SECONDS = 120
LATENCY = 0.3
VARIANTS = {"paced": (LIMIT, True), "sliding": (LIMIT, False), "none": (1_000_000, True)}
SLIDING = "the sliding-window limiter as before (no pacing, no answer times)"
FIGURES = {
    "accepted": {"about": "30 workers, 5 annotators on the OpenAI-compatible backend, fake LLM answering in 300 ms "
                          "and allowing 600 per key per rolling minute, 120 s: requests accepted, share of 5 × 600 rpm",
                 "unit": "%", "goal": ">= 95", "baseline": SLIDING},
    "beyond_limit": {"about": "the same: requests that arrived beyond a key's limit in their rolling minute",
                     "unit": "requests", "goal": "== 0", "baseline": SLIDING},
    "rejected_429": {"about": "the same: requests refused with 429", "unit": "%", "goal": "<= 1", "baseline": SLIDING},
}
# The agent with the workers' limiter as it was: unpaced, and a request counted at its slot even when sent within
# it. The workers are forks of the agent and inherit that.
UNPACED_AGENT = ("import functools, django; django.setup(); "
                 "from workers_app.engine import annotate, ratelimit; "
                 "annotate.RateLimiter = functools.partial(ratelimit.RateLimiter, paced=False); "
                 "ratelimit.Slot.__exit__ = lambda *exc_info: None; "
                 "from django.core.management import call_command; call_command('fleet_agent')")

# One valid answer per domain, recognised by its answer format in the prompt, so that no request is a retry of
# a malformed one.
ANSWERS = (("LEVEL_n", "<<LEVEL_1>>"), ("TA-1", "<<TA-1>>"), ("INT-n", "<<INT-1>>"), ("ADJ-1", "<<NONE>>"),
           ("MOD-1", "<<MOD-1>>"), ("JSON list", '<<["exam stress"]>>'))


def answer_for(body: dict) -> str:
    prompt = json.dumps(body.get("messages") or body.get("prompt") or "")
    return next((answer for marker, answer in ANSWERS if marker in prompt), "<<LEVEL_1>>")


def beyond_limit(times: list[float], limit: int, window: float) -> int:
    """How many requests were at least the (limit + 1)-th to arrive within ``window`` seconds."""
    count, start = 0, 0
    for end, moment in enumerate(times):
        while moment - times[start] >= window:
            start += 1
        count += end - start + 1 > limit
    return count


def measure_variant(rpm: int, paced: bool, *, seconds: int = SECONDS, annotators: int = ANNOTATORS,
                    domains: int = 6, posts: int | None = None) -> dict:
    """One run in this (fresh) process: the fleet for ``seconds`` from the first request, then every process
    killed."""
    # A SIGTERM (a timeout around the bench) unwinds through the clean-up below and the private Redis's atexit.
    signal.signal(signal.SIGTERM, _terminated)
    data_dir = isolated_django(OUTBOUND_ALLOW="127.0.0.1")
    from tests.fake_llm import FakeLLM, Reply, start_fake_llm
    from workers_app.fleet.rows import select_workers
    from workers_app.fleet.services import launch_workers
    from workers_app.models import Annotator, Worker

    posts = import_posts(posts)
    fake = FakeLLM(default=Reply(delay=LATENCY), per_key_rpm=LIMIT, window_seconds=WINDOW, content_for=answer_for)
    start_fake_llm(fake)
    for number in range(1, annotators + 1):
        os.environ[f"LLM_KEY_BENCH_{number}"] = f"bench-key-of-annotator-{number}"
        Annotator.objects.filter(number=number).update(
            backend=Annotator.Backend.OPENAI_COMPATIBLE, base_url=fake.url, model=f"fake-{number}",
            api_key_env=f"LLM_KEY_BENCH_{number}", requests_per_minute=rpm, timeout_seconds=10)
    agent_log = data_dir / "agent.log"
    agent = start_agent(agent_log, command=["manage.py", "fleet_agent"] if paced else ["-c", UNPACED_AGENT])
    workers = [w for n in range(1, annotators + 1) for w in select_workers(n)[:domains]]
    try:
        psutil.cpu_percent()
        load_before = os.getloadavg()[0]
        results = launch_workers(workers, actor="bench", wait=False)
        assert all(r.ok for r in results), [r for r in results if not r.ok]
        give_up = time.monotonic() + 120
        while not any(fake.arrived_at.values()):
            if time.monotonic() > give_up or agent.poll() is not None:
                raise RuntimeError(f"no request reached the fake LLM; agent log:\n{log_tail(agent_log)}")
            time.sleep(0.01)
        first = min(times[0] for times in list(fake.arrived_at.values()) if times)
        while Worker.objects.filter(observed_state="running").count() < len(workers):
            if time.monotonic() > give_up:
                raise RuntimeError(f"not all workers running; agent log:\n{log_tail(agent_log)}")
            time.sleep(0.1)
        all_running = time.monotonic() - first
        time.sleep(max(0.0, first + seconds - time.monotonic()))
        with fake.lock:
            arrived = {auth: [t for t in times if t < first + seconds] for auth, times in fake.arrived_at.items()}
            limited = {auth: [t for t in times if t < first + seconds] for auth, times in fake.limited_at.items()}
        cpu, load_after = psutil.cpu_percent(), os.getloadavg()[0]
        running = Worker.objects.filter(observed_state="running").count()
        waits = _waits(annotators)
    finally:
        for pid in Worker.objects.exclude(pid=None).values_list("pid", flat=True):
            _kill(pid)
        _kill(agent.pid)
        agent.wait()
    per_key = {}
    for auth, times in sorted(arrived.items()):
        refused = len(limited.get(auth, []))
        per_key[auth.removeprefix("Bearer ")] = {
            "requests": len(times), "accepted": len(times) - refused, "rejected_429": refused,
            "max_in_60s": max_in_window(times, WINDOW), "beyond_limit": beyond_limit(times, LIMIT, WINDOW),
            "max_in_1s": max_in_window(times, 1.0), "first_s": round(times[0] - first, 2) if times else None}
    requests = sum(k["requests"] for k in per_key.values())
    accepted = sum(k["accepted"] for k in per_key.values())
    # The same once every worker runs: the launch itself (forking 30 processes) is not the limiter's doing.
    refused_times = sorted(t for times in limited.values() for t in times)
    steady = (sum(1 for times in arrived.values() for t in times if t >= first + all_running)
              - sum(1 for t in refused_times if t >= first + all_running))
    return {"posts": posts, "workers": len(workers), "running": running, "keys": len(per_key),
            "accepted": accepted, "share": accepted / (annotators * LIMIT * seconds / 60),
            "steady_share": steady / (annotators * LIMIT * max(seconds - all_running, 1e-9) / 60),
            "requests": requests, "rejected_429": requests - accepted,
            "share_429": (requests - accepted) / max(requests, 1),
            "max_in_60s": max((k["max_in_60s"] for k in per_key.values()), default=0),
            "beyond_limit": sum(k["beyond_limit"] for k in per_key.values()),
            "max_in_1s": max((k["max_in_1s"] for k in per_key.values()), default=0),
            "waits": waits, "all_running_s": round(all_running, 2), "cpu_percent": cpu, "load_before": load_before,
            "load_after": load_after,
            "per_key": per_key}


def _terminated(signum: int, frame) -> None:
    import traceback

    traceback.print_stack(frame)
    sys.exit(f"terminated by signal {signum}")


def _waits(annotators: int) -> int:
    from workers_app.engine.ratelimit import counters_key
    from workers_app.redis_client import get_redis

    client = get_redis()
    return sum(int(client.hget(counters_key(n), "ratelimit_waits") or 0) for n in range(1, annotators + 1))


def _kill(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def describe(name: str, runs: list[dict]) -> str:
    def median(field: str) -> float:
        return statistics.median(r[field] for r in runs)

    annotators = runs[0]["keys"]
    shares = ", ".join(f"{100 * r['share']:.1f}" for r in runs)
    steady = ", ".join(f"{100 * r['steady_share']:.1f}" for r in runs)
    return (f"{name}: accepted median {median('accepted'):.0f} = {100 * median('share'):.1f} % of "
            f"{annotators * LIMIT} rpm (runs {shares} %; once all {runs[0]['workers']} ran, after a median "
            f"{median('all_running_s'):.1f} s: {steady} %); most in any rolling 60 s per key: "
            f"{max(r['max_in_60s'] for r in runs)} (limit {LIMIT}); requests beyond the limit: "
            f"{', '.join(str(r['beyond_limit']) for r in runs)}; 429s: median {100 * median('share_429'):.2f} % "
            f"({', '.join(str(r['rejected_429']) for r in runs)} of "
            f"{', '.join(str(r['requests']) for r in runs)}); most per key in 1 s: median {median('max_in_1s'):.0f}; "
            f"limiter waits: median {median('waits'):.0f}; CPU {median('cpu_percent'):.0f} %, "
            f"load {median('load_before'):.1f} -> {median('load_after'):.1f}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--variant", choices=sorted(VARIANTS))
    parser.add_argument("--variants", default="paced,sliding")
    args = arguments(parser)
    if args.variant:
        quick = {"seconds": 3, "annotators": 1, "domains": 2, "posts": QUICK_POSTS}
        shape = quick if args.quick else {}
        print(json.dumps(measure_variant(*VARIANTS[args.variant], **shape)))
        return
    results = Results(__file__, FIGURES, quick=args.quick)
    found: dict[str, list[dict]] = {name: [] for name in args.variants.split(",")}
    for _ in range(1 if args.quick else args.runs):
        for name, runs in found.items():
            runs.append(in_fresh_process(__file__, "--variant", name, quick=args.quick))
            print(json.dumps({name: runs[-1]}), flush=True)
    first = next(iter(found.values()))[0]
    print(f"{first['keys']} annotator(s), {first['workers']} workers, each key {LIMIT} rpm; fake LLM answers in "
          f"{1000 * LATENCY:.0f} ms and allows {LIMIT} per key per rolling {WINDOW:.0f} s; {psutil.cpu_count()} CPUs")
    for name, runs in found.items():
        print(describe(name, runs))
    if "paced" in found:
        baseline = found.get("sliding")
        for figure, field, scale in (("accepted", "share", 100), ("beyond_limit", "beyond_limit", 1),
                                     ("rejected_429", "share_429", 100)):
            results.add(figure, [scale * r[field] for r in found["paced"]],
                        baseline=[scale * r[field] for r in baseline] if baseline else None)
        results.write()


if __name__ == "__main__":
    main()
