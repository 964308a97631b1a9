"""After Redis comes back empty, the fleet agent rebuilds what Redis held from the store, and keeps trying until the
rebuild succeeds (real Redis; the fault is one injected failure of the rebuild)."""

from __future__ import annotations

import gc

import pytest
from django.conf import settings
from redis.exceptions import ConnectionError as RedisConnectionError

from tests.conftest import make_samples
from workers_app.engine.queues import queue_length
from workers_app.fleet import agent as agent_module
from workers_app.fleet.agent import Agent
from workers_app.fleet.rows import key_of, select_workers
from workers_app.models import Worker
from workers_app.redis_client import get_redis

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def agent_here(catalogue):
    yield Agent(settings.FLEET_HOST)
    gc.unfreeze()  # the agent froze this process's objects for its forks


@pytest.fixture
def held_lock(agent_here):
    lock = get_redis().lock(f"annot:agent:{agent_here.host}", timeout=settings.FLEET_AGENT_LOCK_SECONDS)
    assert lock.acquire(blocking=False)
    return lock


def running_worker() -> Worker:
    [row] = select_workers(1, "urgency")
    Worker.objects.filter(pk=row.pk).update(desired_state=Worker.Desired.RUNNING)
    return row


def test_it_refills_a_running_workers_queue_when_redis_comes_back_empty(agent_here, held_lock):
    key = key_of(running_worker())
    make_samples(5)
    get_redis().flushdb()  # the lock goes with everything else
    agent_here._keep(held_lock)
    assert get_redis().scard(key.queued_key) == 5 and queue_length(key) == 1  # the built-in takes 20 a message
    pass


def test_a_rebuild_that_fails_is_tried_again_at_the_next_renewal(agent_here, held_lock, monkeypatch):
    key = key_of(running_worker())
    make_samples(5)
    real_sync, failures = agent_module.sync_keys, []

    def sync_failing_once(keys):
        if not failures:
            failures.append(keys)
            raise RedisConnectionError("Connection closed by server.")
        return real_sync(keys)

    monkeypatch.setattr(agent_module, "sync_keys", sync_failing_once)
    get_redis().flushdb()
    agent_here._keep(held_lock)
    assert agent_here.rebuild_owed and queue_length(key) == 0
    agent_here._keep(held_lock)  # the lock is held again now: only the debt says Redis lost everything
    assert not agent_here.rebuild_owed
    assert get_redis().scard(key.queued_key) == 5 and queue_length(key) == 1
