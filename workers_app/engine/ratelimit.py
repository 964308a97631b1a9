"""One annotator's request budget, shared by all its workers on all hosts: a sliding window in Redis.

A token bucket lets up to twice the limit through in some 60 s windows (a full bucket plus a minute of
refill); a log of send times checked atomically in a Lua script never lets more than the limit through in
any window. Redis's own clock is used, so hosts with skewed clocks agree.
"""

from __future__ import annotations

import time
import uuid

import redis

from .keys import rate_limit_key

WINDOW_MS = 60_000
# The API measures arrival times, we measure send times: a small margin keeps jitter from tipping it over.
MARGIN_MS = 250

_ACQUIRE = """
redis.replicate_commands()
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local window = tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
if redis.call('ZCARD', KEYS[1]) < tonumber(ARGV[1]) then
  redis.call('ZADD', KEYS[1], now, ARGV[3])
  redis.call('PEXPIRE', KEYS[1], window)
  return -now
end
local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
return tonumber(oldest[2]) + window - now
"""


class RateLimiter:
    def __init__(self, client: redis.Redis, annotator_number: int, per_minute: int,
                 window_ms: int = WINDOW_MS + MARGIN_MS):
        self.key = rate_limit_key(annotator_number)
        self.per_minute = per_minute
        self.window_ms = window_ms
        self.script = client.register_script(_ACQUIRE)
        self.last_grant_ms = 0  # Redis time of the last slot taken

    def try_acquire(self) -> float:
        """Take one request slot now and return 0, or return how many seconds until one frees up."""
        # The script answers -(grant time) for a slot taken, or the wait in ms.
        answer = int(self.script(keys=[self.key], args=[self.per_minute, self.window_ms, uuid.uuid4().hex]))
        if answer <= 0:
            self.last_grant_ms = -answer
            return 0.0
        return answer / 1000

    def acquire(self, deadline: float | None = None) -> None:
        """Block until a slot is ours; TimeoutError if that would pass ``deadline`` (monotonic seconds)."""
        while True:
            wait = self.try_acquire()
            if wait <= 0:
                return
            if deadline is not None and time.monotonic() + wait > deadline:
                raise TimeoutError("rate limit: no request slot before the deadline")
            time.sleep(min(wait, 1.0) + 0.005)
