"""The product's Redis client against the suite's private Redis server."""

from __future__ import annotations

import redis
from django.conf import settings
from redis.maint_notifications import MaintNotificationsConfig

from workers_app.redis_client import get_redis


def _errors_of_a_new_connection(client: redis.Redis) -> int:
    """The errors the server counts while ``client`` opens a connection and pings."""
    admin = redis.Redis.from_url(settings.REDIS_URL)
    admin.config_resetstat()
    client.ping()
    return sum(stat["count"] for stat in admin.info("errorstats").values())


def test_a_new_connection_makes_no_maintenance_notification_handshake():
    plain = redis.Redis.from_url(settings.REDIS_URL, maint_notifications_config=MaintNotificationsConfig(enabled=False))
    chatty = redis.Redis.from_url(settings.REDIS_URL)  # redis-py's default: the handshake, refused by this server
    product = get_redis.__wrapped__()  # the product's client as made, not the process's cached (connected) one
    assert _errors_of_a_new_connection(product) == _errors_of_a_new_connection(plain)
    assert _errors_of_a_new_connection(chatty) > _errors_of_a_new_connection(plain)
