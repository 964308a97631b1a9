"""What the fleet agent recovers without anyone launching again: after Redis comes back empty it rebuilds what
Redis held from the store, and keeps trying until the rebuild succeeds (the fault: one injected failure); samples
an idle running worker lost (in no queue, in no consumer's hands, in no outcome) are queued again. Real Redis and
database; the losses are made by hand, as a kill in the wrong instant would make them."""

from __future__ import annotations

import gc

import pytest
from django.conf import settings
from redis.exceptions import ConnectionError as RedisConnectionError

from tests.helpers import make_samples
from workers_app.engine.keys import broker_key, redis_key
from workers_app.engine.queues import populate_keys, queue_length
from workers_app.fleet import agent as agent_module
from workers_app.fleet.agent import Agent
from workers_app.fleet.lost_work import LostWork
from workers_app.fleet.rows import key_of, select_workers
from workers_app.models import Annotator, Worker
from workers_app.redis_client import get_redis

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def agent_here(catalogue):
    yield Agent(settings.FLEET_HOST)
    gc.unfreeze()  # the agent froze this process's objects for its forks


@pytest.fixture
def held_lock(agent_here):
    lock = get_redis().lock(redis_key("agent", agent_here.host), timeout=settings.FLEET_AGENT_LOCK_SECONDS)
    assert lock.acquire(blocking=False)
    return lock


def running_worker() -> Worker:
    [row] = select_workers(1, "urgency")
    Worker.objects.filter(pk=row.pk).update(desired_state=Worker.Desired.RUNNING,
                                            observed_state=Worker.Observed.RUNNING)
    return Worker.objects.select_related("annotator", "domain").get(pk=row.pk)


def lose_the_queued_message(key) -> None:
    """What a worker SIGKILLed between kombu's BRPOP and its record of the unacknowledged message leaves: the
    samples claimed, their message nowhere."""
    populate_keys([key])
    get_redis().delete(key.queue_key)


def hold_the_queued_message(key) -> None:
    """What a worker answering (or waiting to retry) a message looks like in Redis: taken, not acknowledged."""
    populate_keys([key])
    raw = get_redis().rpop(key.queue_key)
    get_redis().hset(broker_key("unacked"), "tag-1", f'[{raw}, "", "{key.queue}"]')


def test_it_refills_a_running_workers_queue_when_redis_comes_back_empty(agent_here, held_lock):
    key = key_of(running_worker())
    make_samples(5)
    get_redis().flushdb()  # the lock goes with everything else
    agent_here._keep(held_lock)
    assert get_redis().scard(key.queued_key) == 5 and queue_length(key) == 1  # the built-in takes 20 a message
    assert not agent_here.rebuild_owed


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


class LockGoneThenConnectionDropped:
    """The host lock as the agent meets it when Redis restarts empty and then drops every client: its key is gone
    (reacquire fails), and the next command, taking it again, loses its connection once."""

    def __init__(self, lock):
        self.lock, self.dropped = lock, False

    def reacquire(self):
        return self.lock.reacquire()

    def acquire(self, blocking: bool = False):
        if not self.dropped:
            self.dropped = True
            raise RedisConnectionError("Connection closed by server.")
        return self.lock.acquire(blocking=blocking)


def test_a_connection_dropped_while_it_takes_its_lost_lock_again_is_tried_again_not_fatal(agent_here, held_lock):
    key = key_of(running_worker())
    make_samples(5)
    lock = LockGoneThenConnectionDropped(held_lock)
    get_redis().flushdb()
    agent_here._keep(lock)  # found by bench/chaos.py --quick: this raised, and the agent exited
    assert not agent_here.stopping and agent_here.rebuild_owed and queue_length(key) == 0
    agent_here._keep(lock)
    assert not agent_here.stopping and not agent_here.rebuild_owed
    assert get_redis().scard(key.queued_key) == 5 and queue_length(key) == 1


@pytest.fixture
def looks(catalogue):
    finder = LostWork()
    return lambda workers: finder.hand_out_again(workers)


def test_samples_in_no_queue_no_hands_and_no_outcome_are_queued_again_at_the_second_look(looks):
    row = running_worker()
    make_samples(5)
    lose_the_queued_message(key_of(row))
    assert looks([row]) == {}  # once could be a message taken off its queue a moment ago
    assert looks([row]) == {row.name: 5}
    assert queue_length(key_of(row)) == 1 and get_redis().scard(key_of(row).queued_key) == 5
    assert looks([row]) == {}  # waiting again now


def test_a_message_a_worker_holds_is_not_lost(looks):
    row = running_worker()
    make_samples(5)
    hold_the_queued_message(key_of(row))
    assert looks([row]) == {} and looks([row]) == {}
    assert queue_length(key_of(row)) == 0


def test_a_worker_without_samples_has_nothing_lost(looks):
    row = running_worker()
    assert looks([row]) == {} and looks([row]) == {}  # no samples at all
    assert queue_length(key_of(row)) == 0


def test_an_annotator_blocked_by_a_backend_error_is_not_given_its_samples_again(looks):
    row = running_worker()
    make_samples(5)
    lose_the_queued_message(key_of(row))
    Annotator.objects.filter(pk=row.annotator_id).update(backend_error="401 from the LLM server")
    row = Worker.objects.select_related("annotator", "domain").get(pk=row.pk)
    assert looks([row]) == {} and looks([row]) == {}
    assert queue_length(key_of(row)) == 0
