"""Per-token request budget, counted in Redis so that every web process shares it."""

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


class PerTokenThrottle(BaseThrottle):
    """A fixed window of API_TOKEN_RATE requests per token (per user for a browser session)."""

    def __init__(self):
        self.retry_in: float | None = None

    def allow_request(self, request: Request, view) -> bool:
        if request.auth is not None and hasattr(request.auth, "prefix"):
            who = f"token:{request.auth.prefix}"
        elif request.user and request.user.is_authenticated:
            who = f"user:{request.user.pk}"
        else:
            return True  # refused by authentication anyway
        limit, period = parse_rate(settings.API_TOKEN_RATE)
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
