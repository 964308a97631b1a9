"""The per-annotator budget: never above its limit in any window, across processes, paced evenly, and reached."""

from __future__ import annotations

import itertools
import json
import logging
import socket
import subprocess
import sys
import textwrap
import threading
import time

import httpx
import pytest
import redis
from django.conf import settings
from redis.backoff import NoBackoff
from redis.retry import Retry

from tests.fake_llm import FakeLLM, start_fake_llm
from tests.worker_processes import worker_env
from workers_app.engine.ratelimit import RateLimiter, counters_key
from workers_app.redis_client import get_redis

LIMIT = 20
WINDOW_MS = 2000
SECONDS = 5

HAMMER = textwrap.dedent(f"""
    import json, sys, time, redis
    from workers_app.engine.ratelimit import RateLimiter
    client = redis.Redis.from_url(sys.argv[1], decode_responses=True)
    limiter = RateLimiter(client, 7, {LIMIT}, window_ms={WINDOW_MS})
    granted, end = [], time.monotonic() + {SECONDS}
    while time.monotonic() < end:
        if limiter.try_acquire() <= 0:
            granted.append(limiter.last_grant_ms)
        else:
            time.sleep(0.002)
    print(json.dumps(granted))
""")


def redis_ms() -> float:
    seconds, micros = get_redis().time()
    return seconds * 1000 + micros / 1000


def test_six_processes_sharing_an_annotator_never_exceed_its_limit_in_any_window():
    # The product's settings on this test's DATA_DIR: the same install, so the same Redis keys.
    processes = [subprocess.Popen([sys.executable, "-c", HAMMER, settings.REDIS_URL], stdout=subprocess.PIPE,
                                  text=True, cwd=settings.BASE_DIR, env=worker_env()) for _ in range(6)]
    granted = sorted(t for p in processes for t in json.loads(p.communicate(timeout=60)[0]))
    for index, start in enumerate(granted):
        in_window = sum(1 for t in granted[index:] if t < start + WINDOW_MS)
        assert in_window <= LIMIT, f"{in_window} requests within {WINDOW_MS} ms from {start}"
    # The limit is also reached, not just respected: one full window per elapsed window (less one slot of pace).
    assert len(granted) >= LIMIT * (SECONDS * 1000 // WINDOW_MS)
    assert len({p for p in processes if p.returncode == 0}) == 6


def test_callers_arriving_at_once_get_slots_one_pace_apart_and_each_sleeps_until_its_own():
    slots, lock = [], threading.Lock()

    def call() -> None:
        limiter = RateLimiter(get_redis(), 3, 10, window_ms=1000)  # one slot every 100 ms
        limiter.acquire()
        returned = redis_ms()
        with lock:
            slots.append((limiter.last_grant_ms, returned))

    threads = [threading.Thread(target=call) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)
    slots.sort()
    assert len(slots) == 8
    assert all(later[0] - earlier[0] >= 99 for earlier, later in itertools.pairwise(slots))
    assert all(returned >= slot - 1 for slot, returned in slots)  # nobody sent before its slot
    # Spread over the window, not 8 at once and then a pause for the rest of it.
    assert 690 <= slots[-1][0] - slots[0][0] <= 800


def test_a_slot_beyond_the_deadline_raises_timeout_and_reserves_nothing():
    limiter = RateLimiter(get_redis(), 4, 1, window_ms=1000)
    limiter.acquire()
    with pytest.raises(TimeoutError, match="no request slot before the deadline"):
        limiter.acquire(time.monotonic() + 0.2)
    assert get_redis().zcard(limiter.key) == 1
    started = time.monotonic()
    limiter.acquire(time.monotonic() + 2)
    assert 0.7 <= time.monotonic() - started <= 1.5


def test_every_acquire_that_had_to_wait_is_counted_on_its_annotator():
    limiter = RateLimiter(get_redis(), 5, 5, window_ms=500)  # one slot every 100 ms
    limiter.acquire()
    assert get_redis().hget(counters_key(5), "ratelimit_waits") is None
    limiter.acquire()
    limiter.acquire()
    assert get_redis().hget(counters_key(5), "ratelimit_waits") == "2"
    assert get_redis().hget(counters_key(6), "ratelimit_waits") is None


def test_a_counter_that_cannot_be_written_costs_no_request(caplog):
    get_redis().set(counters_key(8), "not a hash")  # HINCRBY on it fails with WRONGTYPE
    limiter = RateLimiter(get_redis(), 8, 5, window_ms=500)
    with caplog.at_level(logging.WARNING, logger="workers_app.engine.ratelimit"):
        limiter.acquire()
        limiter.acquire()
    assert get_redis().zcard(limiter.key) == 2
    assert get_redis().get(counters_key(8)) == "not a hash"
    assert "rate-limit wait not counted" in caplog.text


def test_without_redis_the_limiter_fails_instead_of_letting_requests_through():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    client = redis.Redis(port=closed_port, socket_connect_timeout=1, retry=Retry(NoBackoff(), 0))
    limiter = RateLimiter(client, 9, 5)
    with pytest.raises(redis.ConnectionError):
        limiter.acquire()


@pytest.fixture
def limited_api():
    fake = FakeLLM(per_key_rpm=LIMIT, window_seconds=WINDOW_MS / 1000)
    server = start_fake_llm(fake)
    yield fake
    server.shutdown()
    server.server_close()


def test_the_fake_api_refuses_a_keys_request_over_its_rolling_limit_with_429_and_retry_after(limited_api):
    limited_api.per_key_rpm = 2
    with httpx.Client() as client:
        statuses = [client.post(f"{limited_api.url}/chat/completions", json={},
                                headers={"Authorization": f"Bearer {key}"}) for key in ("a", "a", "a", "b")]
    assert [r.status_code for r in statuses] == [200, 200, 429, 200]
    assert statuses[2].headers["Retry-After"] in ("1", "2")  # whole seconds, rounded up
    assert [len(limited_api.arrived_at[f"Bearer {key}"]) for key in "ab"] == [3, 1]
    assert [len(limited_api.limited_at[f"Bearer {key}"]) for key in "ab"] == [1, 0]


def test_paced_workers_at_full_speed_get_no_429_from_an_api_counting_arrivals(limited_api):
    """Six threads ask as fast as they can for 4 s; the API counts its own rolling window of arrivals."""
    end = time.monotonic() + 4

    def work() -> None:
        limiter = RateLimiter(get_redis(), 10, LIMIT, window_ms=WINDOW_MS + 100)
        with httpx.Client() as client:
            while time.monotonic() < end:
                limiter.acquire()
                client.post(f"{limited_api.url}/chat/completions", json={}, headers={"Authorization": "Bearer k"})

    threads = [threading.Thread(target=work) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=15)
    assert limited_api.limited_at["Bearer k"] == []
    # 4 s at one request every 105 ms: the limit is reached, not just respected.
    assert len(limited_api.arrived_at["Bearer k"]) >= 36


def test_a_request_sent_within_its_slot_counts_from_its_answer_not_from_its_slot():
    limiter = RateLimiter(get_redis(), 11, 1, window_ms=500)
    with limiter.acquire():
        time.sleep(0.3)  # the API takes its time; it may have counted the request at any moment until the answer
    answered = redis_ms()
    limiter.acquire()
    assert limiter.last_grant_ms >= answered + 500 - 2


def test_an_answer_time_that_cannot_be_recorded_costs_no_request(caplog):
    limiter = RateLimiter(get_redis(), 12, 5, window_ms=500)
    with caplog.at_level(logging.WARNING, logger="workers_app.engine.ratelimit"), limiter.acquire():
        get_redis().delete(limiter.key)
        get_redis().set(limiter.key, "not a log")  # ZADD on it fails with WRONGTYPE
    assert "answer time not recorded" in caplog.text
