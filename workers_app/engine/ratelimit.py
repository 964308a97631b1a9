"""One annotator's request budget, shared by all its workers on all hosts: paced slots in a sliding window in Redis.

A token bucket lets up to twice the limit through in some 60 s windows (a full bucket plus a minute of
refill); a log of send times checked atomically in a Lua script never lets more than the limit through in
any window. Redis's own clock is used, so hosts with skewed clocks agree.

The API counts arrivals, the log counts slots, and a request arrives somewhere between its slot and its answer. A
request that arrived late (a loaded host, a slow network) followed a minute later by one on time makes the API
count more than the limit in its window. So a request sent within ``with limiter.acquire():`` has its log entry
moved to the time its answer came: a minute after that, it has certainly left the API's window too.

The log alone also lets a whole minute's budget go at once and then nothing for the rest of the minute: a burst
that loads every host at the same moment (and that APIs which enforce their limit over shorter periods refuse).
So slots are also paced, one every window/limit. Each caller reserves its own slot, possibly a little ahead, and
sleeps until then: no polling, no stampede.
"""

from __future__ import annotations

import logging
import math
import time
import uuid
from typing import Self

import redis

from .keys import rate_limit_key, redis_key

log = logging.getLogger(__name__)

WINDOW_MS = 60_000
# The API measures arrival times, we measure send times: a small margin keeps jitter from tipping it over.
MARGIN_MS = 250

# KEYS[1]: the log (member -> send or answer time, ms, Redis clock); KEYS[2]: the next paced slot. ARGV: limit,
# window ms, pace ms (0: no pacing), longest acceptable wait ms (-1: any), a unique member. Answers {1, slot, wait}
# for a slot reserved at Redis time ``slot``, ``wait`` ms from now, or {0, slot, wait} when that wait would be too
# long (nothing reserved).
_RESERVE = """
redis.replicate_commands()
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local limit, window, pace, max_wait = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
local slot = math.max(now, tonumber(redis.call('GET', KEYS[2]) or 0))
local within = redis.call('ZCOUNT', KEYS[1], '(' .. (slot - window), '+inf')
if within >= limit then
  -- the slot moves to when enough of the window's requests have left it
  local leaving = redis.call('ZRANGEBYSCORE', KEYS[1], '(' .. (slot - window), '+inf', 'WITHSCORES',
                             'LIMIT', within - limit, 1)
  slot = tonumber(leaving[2]) + window
end
local wait = math.ceil(slot - now)
if max_wait >= 0 and wait > max_wait then
  return {0, math.floor(slot), wait}
end
redis.call('ZADD', KEYS[1], slot, ARGV[5])
redis.call('PEXPIRE', KEYS[1], wait + window)
redis.call('SET', KEYS[2], tostring(slot + pace), 'PX', wait + window)
return {1, math.floor(slot), wait}
"""

# KEYS[1]: the log; ARGV: a member, window ms. The member's request has been answered: it counts from now on.
_ANSWERED = """
redis.replicate_commands()
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZADD', KEYS[1], 'XX', now, ARGV[1])
if redis.call('PTTL', KEYS[1]) < tonumber(ARGV[2]) then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
"""


def counters_key(annotator_number: int) -> str:
    """An annotator's counters, shared by its workers: ``ratelimit_waits`` counts requests the limit held back."""
    return redis_key("counters", annotator_number)


class Slot:
    """One reserved request. Used as a context manager around the request, its log entry moves to when the answer
    came (or the call failed); otherwise it stays at the slot's time."""

    def __init__(self, limiter: RateLimiter, member: str):
        self.limiter = limiter
        self.member = member

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        limiter = self.limiter
        try:
            limiter.answered(keys=[limiter.key], args=[self.member, limiter.window_ms])
        except redis.RedisError as exc:
            # The LLM call is done and paid for: its outcome must not be lost to a Redis hiccup now. The entry
            # keeps its slot time, as without the context manager.
            log.warning("%s: answer time not recorded (%s)", limiter.key, exc)


class RateLimiter:
    """At most ``per_minute`` requests in any window of ``window_ms``, one every window/limit when ``paced``.

    ``paced=False`` is the sliding window alone (whole-minute bursts allowed), kept as the benchmark's baseline."""

    def __init__(self, client: redis.Redis, annotator_number: int, per_minute: int,
                 window_ms: int = WINDOW_MS + MARGIN_MS, *, paced: bool = True):
        self.client = client
        self.key = rate_limit_key(annotator_number)
        self.counters = counters_key(annotator_number)
        self.per_minute = per_minute
        self.window_ms = window_ms
        self.pace_ms = window_ms / per_minute if paced else 0
        self.reserve = client.register_script(_RESERVE)
        self.answered = client.register_script(_ANSWERED)
        self.last_grant_ms = 0  # Redis time of the last slot taken

    def _reserve(self, max_wait_ms: int) -> tuple[str | None, float]:
        member = uuid.uuid4().hex
        reserved, slot, wait = self.reserve(keys=[self.key, f"{self.key}:next"], args=[
            self.per_minute, self.window_ms, self.pace_ms, max_wait_ms, member])
        if reserved:
            self.last_grant_ms = int(slot)
        return member if reserved else None, max(0, int(wait)) / 1000

    def try_acquire(self) -> float:
        """Take one request slot now and return 0, or return how many seconds until one frees up."""
        member, wait = self._reserve(0)
        return 0.0 if member else wait

    def acquire(self, deadline: float | None = None) -> Slot:
        """Reserve the next slot and sleep until it; TimeoutError (nothing reserved) if it lies beyond ``deadline``
        (monotonic seconds). Send the request within ``with`` the returned slot."""
        max_wait_ms = -1 if deadline is None else max(0, math.floor((deadline - time.monotonic()) * 1000))
        member, wait = self._reserve(max_wait_ms)
        if member is None:
            raise TimeoutError(f"rate limit: no request slot before the deadline (next in {wait:.1f} s)")
        if wait > 0:
            self._count_wait()
            time.sleep(wait)
        return Slot(self, member)

    def _count_wait(self) -> None:
        # A statistic: losing one to a Redis hiccup must not cost the annotation (the slot itself is taken by the
        # script, whose errors do propagate).
        try:
            self.client.hincrby(self.counters, "ratelimit_waits", 1)
        except redis.RedisError as exc:
            log.warning("%s: rate-limit wait not counted (%s)", self.counters, exc)
