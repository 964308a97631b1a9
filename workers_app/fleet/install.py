"""Which install a process belongs to, checked against the database and Redis before it runs workers.

Every Redis key of an install lives under ``annot:<INSTALL_ID>:``. Two mistakes would mix installs, and both are
refused with a message that says what to set:

- a host whose INSTALL_ID is not the one its database was made with (a second host without the shared INSTALL_ID
  would run in a namespace of its own: the first host's agent and the health sweep would never see its workers);
- a second install (another database) whose INSTALL_ID is the first one's (a copied DATA_DIR): it would take the
  first install's queues and locks. The running install holds its namespace with a claim that its agent renews.
"""

from __future__ import annotations

import socket

from django.conf import settings
from django.db import IntegrityError, connection

from workers_app.engine.keys import redis_key
from workers_app.models import Installation
from workers_app.redis_client import get_redis

CLAIM_SECONDS = 90


class InstallConflict(RuntimeError):
    """This process would mix two installs; the message says which and what to set."""


def database_address() -> str:
    """Where this install's database is, without any password: what tells two installs apart."""
    db = connection.settings_dict
    if db["ENGINE"].endswith("sqlite3"):
        return f"sqlite:{socket.gethostname()}:{db['NAME']}"
    return f"{db['ENGINE'].rsplit('.', 1)[-1]}://{db['HOST'] or 'localhost'}:{db['PORT'] or ''}/{db['NAME']}"


def check_database() -> None:
    """The database names this install; the first process to ask records it."""
    try:
        row, _ = Installation.objects.get_or_create(
            pk=1, defaults={"install_id": settings.INSTALL_ID, "created_on_host": settings.FLEET_HOST})
    except IntegrityError:  # made by another process meanwhile
        row = Installation.objects.get(pk=1)
    if row.install_id != settings.INSTALL_ID:
        raise InstallConflict(
            f"this database belongs to install {row.install_id!r} (made on host {row.created_on_host or '?'}), but "
            f"this host's install id is {settings.INSTALL_ID!r}: set INSTALL_ID={row.install_id} in this host's "
            "environment (every host of one install shares it)")


def claim_namespace() -> None:
    """Hold (or renew) this install's Redis namespace; refuse one that another database holds."""
    client = get_redis()
    key, mine = redis_key("install"), database_address()
    if client.set(key, mine, nx=True, ex=CLAIM_SECONDS):
        return
    holder = client.get(key)
    if holder not in (None, mine):
        raise InstallConflict(
            f"the Redis keys {settings.REDIS_KEY_PREFIX}* belong to another install (database {holder}) on "
            f"{settings.REDIS_URL.rsplit('@', 1)[-1]}; this one's database is {mine}. A copied DATA_DIR carries the "
            f"install id: delete {settings.DATA_DIR / 'install_id'} to give this install its own")
    client.set(key, mine, ex=CLAIM_SECONDS)


def check_install() -> None:
    check_database()
    claim_namespace()


def release_namespace() -> int:
    """Delete every Redis key of this install (all of it is rebuilt from the store at the next start); return how
    many. For `./run.sh` on a Redis it shares with others: it leaves that Redis as it found it."""
    client = get_redis()
    doomed = list(client.scan_iter(match=settings.REDIS_KEY_PREFIX + "*", count=1000))
    for start in range(0, len(doomed), 1000):
        client.delete(*doomed[start : start + 1000])
    return len(doomed)
