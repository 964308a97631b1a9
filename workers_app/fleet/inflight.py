"""Each LLM worker's requests in flight follow its annotator's rate limit: a controller thread per worker process.

Little's law: to send ``rate`` requests a second that take ``latency`` seconds each, ``rate x latency`` must be in
flight. The annotator's limit is shared by its busy workers (those with messages queued or held), so each takes
its share, never more than its own demand, between WORKER_MIN_INFLIGHT and WORKER_MAX_INFLIGHT; an idle worker
goes to the minimum. The rate limiter still gates every request: a target too high costs waiting threads, never a
request beyond the limit. Every few seconds each controller publishes its worker's latency and demand in Redis (so
the annotator's workers see each other's) and reads the annotator's, resizes its gate and Celery's prefetch, and
records each change as a WorkerEvent.
"""

from __future__ import annotations

import json
import logging
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from django.conf import settings
from django.db import close_old_connections

from workers_app.engine.catalogue_cache import catalogue_rows
from workers_app.engine.concurrency import process_gate
from workers_app.engine.keys import WorkerKey, rate_limit_key, redis_key
from workers_app.models import Annotator, Worker, WorkerEvent
from workers_app.redis_client import get_redis

log = logging.getLogger(__name__)
ACTOR = "system:worker"
PERIOD_SECONDS = 3.0
# Each request also spends time outside the LLM call (its slot, parsing, storing): a quarter more in flight.
SLACK = 1.25
# A worker whose controller has not reported for this long counts no more (stopped, or killed).
FRESH_SECONDS = 3 * PERIOD_SECONDS

# KEYS[1]: the annotator's worker states (domain -> JSON), KEYS[2]: their report times (Redis clock), KEYS[3]: the
# annotator's rate-limit log. ARGV: this worker's domain, its state, freshness seconds. Stores the state, forgets
# stale workers, answers {states as a flat list, slots reserved ahead of now}.
_REPORT = """
redis.replicate_commands()
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local fresh = tonumber(ARGV[3])
for _, field in ipairs(redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now - fresh)) do
  redis.call('HDEL', KEYS[1], field)
  redis.call('ZREM', KEYS[2], field)
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('ZADD', KEYS[2], now, ARGV[1])
redis.call('EXPIRE', KEYS[1], math.ceil(fresh))
redis.call('EXPIRE', KEYS[2], math.ceil(fresh))
local ahead = redis.call('ZCOUNT', KEYS[3], '(' .. math.floor(now * 1000), '+inf')
return {redis.call('HGETALL', KEYS[1]), ahead}
"""


def states_key(annotator_number: int) -> str:
    return redis_key("inflight", annotator_number)


@dataclass(frozen=True)
class Observation:
    per_minute: int  # the annotator's rate limit
    latency_s: float | None  # its workers' mean answer time; None before any answer
    busy_workers: int  # its workers with demand, this one included when it has some
    demand: int  # this worker's messages queued or held
    slots_ahead: int  # requests holding a rate-limit slot that lies ahead: the limit is holding them back


def inflight_target(seen: Observation, current: int, minimum: int, maximum: int) -> int:
    """This worker's requests in flight for what it sees now."""
    if seen.demand == 0:
        return minimum
    if seen.latency_s is None:
        return current  # nothing answered yet: no latency to size by
    needed = seen.per_minute / 60 * seen.latency_s * SLACK
    share = math.ceil(needed / max(seen.busy_workers, 1))
    if seen.slots_ahead > seen.busy_workers:
        share = min(share, current)  # no headroom left: more in flight would only wait for slots
    return max(minimum, min(maximum, share, seen.demand))


def worth_changing(current: int, target: int, minimum: int) -> bool:
    """Small steps of a large target are noise in the latency average, not worth an event."""
    return target != current and (target == minimum or abs(target - current) >= max(1, current // 10))


def describe(seen: Observation) -> str:
    if seen.demand == 0:
        return "idle"
    latency = "no answer yet" if seen.latency_s is None else f"latency {seen.latency_s:.1f} s"
    return (f"{latency}, {seen.per_minute} rpm over {seen.busy_workers} busy worker(s), {seen.demand} waiting, "
            f"{seen.slots_ahead} slot(s) reserved ahead")


def pool_threads(annotator: Annotator) -> int:
    """Threads of a worker's Celery pool: the built-in baseline computes in-process under the GIL, so more threads
    than WORKER_THREADS buy it nothing; an LLM worker gets one per request its gate may let through."""
    if annotator.answers_in_process:
        return settings.WORKER_THREADS
    return settings.WORKER_MAX_INFLIGHT


def held_messages(target: int) -> int:
    """Messages a worker holds for ``target`` requests in flight: a quarter more, so that a request that answers
    finds the next message here already, within the pool."""
    return min(settings.WORKER_MAX_INFLIGHT, target + max(1, target // 4))


def record_target_change(key: WorkerKey, before: int, after: int, why: str) -> None:
    """A WorkerEvent in the worker's current state: the state does not change, its requests in flight do."""
    worker = Worker.objects.only("pk", "observed_state").get(annotator__number=key.annotator,
                                                              domain__slug=key.domain)
    WorkerEvent.objects.create(worker=worker, from_state=worker.observed_state, to_state=worker.observed_state,
                               reason=f"in flight {before} → {after}: {why}"[:300], actor=ACTOR)


class InflightController(threading.Thread):
    """Sizes this process's gate and prefetch every PERIOD_SECONDS; ``consumer`` is Celery's, ``consuming`` says
    whether it consumes the worker's queue now."""

    def __init__(self, consumer, key: WorkerKey, consuming: Callable[[], bool]):
        super().__init__(name="fleet-inflight", daemon=True)
        self.consumer = consumer
        self.key = key
        self.consuming = consuming
        self.gate = process_gate()
        self.report = get_redis().register_script(_REPORT)
        self.held = consumer.qos.value  # Celery's prefetch at start: one message per pool thread

    def start(self) -> None:
        annotator, _ = catalogue_rows(self.key)
        if not annotator.answers_in_process:  # the built-in and trained baselines pass no gate
            self._apply(settings.WORKER_MIN_INFLIGHT)
        super().start()

    def run(self) -> None:
        while True:
            self._wait()
            try:
                self.step()
            except Exception:  # a missed step keeps the last target, which the rate limiter makes safe
                log.warning("in-flight control of %s failed", self.key, exc_info=True)
            finally:
                close_old_connections()

    def _wait(self) -> None:
        if self.gate.first_answer.is_set():
            time.sleep(PERIOD_SECONDS)
        else:  # the first answer brings the first latency: size by it at once rather than at the next period
            self.gate.first_answer.wait(PERIOD_SECONDS)

    def step(self) -> None:
        annotator, _ = catalogue_rows(self.key)
        if annotator.answers_in_process:
            return
        seen = self.observe(annotator)
        minimum = settings.WORKER_MIN_INFLIGHT
        current = self.gate.size or minimum
        target = inflight_target(seen, current, minimum, settings.WORKER_MAX_INFLIGHT)
        if self.gate.size is None or worth_changing(current, target, minimum):
            self._apply(target)
            if target != current:
                record_target_change(self.key, current, target, describe(seen))

    def observe(self, annotator: Annotator) -> Observation:
        # A paused worker's queue waits for no request of its: it takes no share of the limit.
        queued = get_redis().llen(self.key.queue_key) if self.consuming() else 0
        demand = queued + self.gate.held
        mine = {"latency": self.gate.latency_s, "demand": demand}
        flat, ahead = self.report(
            keys=[states_key(self.key.annotator), f"{states_key(self.key.annotator)}:at",
                  rate_limit_key(self.key.annotator)],
            args=[self.key.domain, json.dumps(mine), FRESH_SECONDS])
        states = [json.loads(value) for value in flat[1::2]]
        latencies = [s["latency"] for s in states if s.get("latency") is not None]
        return Observation(per_minute=annotator.requests_per_minute,
                           latency_s=sum(latencies) / len(latencies) if latencies else None,
                           busy_workers=sum(1 for s in states if s.get("demand")), demand=demand,
                           slots_ahead=int(ahead))

    def _apply(self, target: int) -> None:
        self.gate.resize(target)
        held = held_messages(target)
        # Celery's consumer applies a changed prefetch at its next loop; "eventually" is its thread-safe way in.
        if held > self.held:
            self.consumer.qos.increment_eventually(held - self.held)
        elif held < self.held:
            self.consumer.qos.decrement_eventually(self.held - held)
        self.held = held
