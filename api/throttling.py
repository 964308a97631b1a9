"""Per-user request budget, counted in Redis so that every web process shares it.

Counted per user, not per token: a user may make several tokens (at most API_MAX_TOKENS_PER_USER), and a second
token must not be a second budget. The user's browser session spends the same budget.
"""

from __future__ import annotations

import logging
import time

import redis
from django.conf import settings
from rest_framework.request import Request
from rest_framework.throttling import BaseThrottle

from workers_app.engine.keys import redis_key
from workers_app.redis_client import get_redis

log = logging.getLogger(__name__)
PERIODS = {"s": 1, "sec": 1, "m": 60, "min": 60, "h": 3600, "hour": 3600, "d": 86400, "day": 86400}


def parse_rate(rate: str) -> tuple[int, int]:
    """``600/min`` -> (600, 60); the setting is checked when settings load."""
    count, _, period = rate.partition("/")
    return int(count), PERIODS[period]


class PerUserThrottle(BaseThrottle):
    """A fixed window of API_USER_RATE requests per user, whichever of their tokens (or session) they use."""

    def __init__(self):
        self.retry_in: float | None = None

    def allow_request(self, request: Request, view) -> bool:
        if not (request.user and request.user.is_authenticated):
            return True  # refused by authentication anyway
        who = f"user:{request.user.pk}"
        limit, period = parse_rate(settings.API_USER_RATE)
        now = time.time()
        window = int(now // period)
        key = redis_key("api", "throttle", who, window)
        try:
            pipe = get_redis().pipeline(transaction=False)
            pipe.incr(key)
            pipe.expire(key, period + 1)
            count = pipe.execute()[0]
        except redis.RedisError as exc:
            # The budget protects the fleet from a runaway script; with Redis away the fleet cannot act anyway.
            log.warning("API throttle not applied: %s", exc)
            return True
        if count <= limit:
            return True
        self.retry_in = (window + 1) * period - now
        return False

    def wait(self) -> float | None:
        return self.retry_in
