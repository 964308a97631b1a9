"""One Redis client per process, from settings.REDIS_URL."""

from __future__ import annotations

from functools import cache

import redis
from django.conf import settings
from redis.maint_notifications import MaintNotificationsConfig


@cache
def get_redis() -> redis.Redis:
    # redis-py 8 asks every new connection to take maintenance notifications (a Redis Cloud / Enterprise feature)
    # unless told not to: on the Redis servers this product runs with, that is one refused round trip more per
    # connection, and on a loaded machine its failure surfaced as "I/O operation on closed file" (an HTTP 500 of
    # the dashboard, seen in bench/web.py) rather than as a connection error.
    return redis.Redis.from_url(settings.REDIS_URL, decode_responses=True, health_check_interval=30,
                                maint_notifications_config=MaintNotificationsConfig(enabled=False))
