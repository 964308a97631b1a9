"""The per-annotator budget holds across processes: six real processes share one limiter in Redis."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

from django.conf import settings

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


def test_six_processes_sharing_an_annotator_never_exceed_its_limit_in_any_window():
    processes = [subprocess.Popen([sys.executable, "-c", HAMMER, settings.REDIS_URL], stdout=subprocess.PIPE,
                                  text=True, cwd=settings.BASE_DIR) for _ in range(6)]
    granted = sorted(t for p in processes for t in json.loads(p.communicate(timeout=60)[0]))
    for index, start in enumerate(granted):
        in_window = sum(1 for t in granted[index:] if t < start + WINDOW_MS)
        assert in_window <= LIMIT, f"{in_window} requests within {WINDOW_MS} ms from {start}"
    # The limit is also reached, not just respected: one full window per elapsed window.
    assert len(granted) >= LIMIT * (SECONDS * 1000 // WINDOW_MS)
    assert len({p for p in processes if p.returncode == 0}) == 6
