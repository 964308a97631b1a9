"""What a managed worker process does for the fleet: apply its desired state at start, and beat.

The agent starts each worker consuming only a private idle queue; on ready the worker reads its desired
state from the database and starts consuming its annotation queue only if that state is ``running``. So a
paused worker stays paused across restarts, and a pause sent while it was down is not lost.
"""

from __future__ import annotations

import logging
import os
import threading
import time

import psutil
from celery.worker.control import control_command
from django.conf import settings
from django.db import close_old_connections
from django.utils import timezone
from redis.exceptions import RedisError

from workers_app.engine.annotate import current_samples
from workers_app.engine.batch import process_batcher
from workers_app.engine.concurrency import process_gate
from workers_app.engine.flusher import process_flusher
from workers_app.engine.keys import WorkerKey, redis_key
from workers_app.engine.live import write_heartbeat
from workers_app.models import Worker
from workers_app.redis_client import get_redis

from .inflight import InflightController
from .transitions import force_observed

log = logging.getLogger(__name__)
ENV_NAME = "FLEET_WORKER"
# Set by the agent for processes it starts together (host:time:size); see _consume_with_group.
START_GROUP_ENV = "FLEET_START_GROUP"
START_GROUP_SECONDS = 10
# The CPU priority (nice) the agent chose for this process: taken once the worker is ready (see _yield_the_cpu).
NICE_ENV = "FLEET_WORKER_NICE_WHEN_READY"
ACTOR = "system:worker"


def managed_key() -> WorkerKey | None:
    name = os.environ.get(ENV_NAME)
    return WorkerKey.parse(name) if name else None


def idle_queue(key: WorkerKey) -> str:
    return f"{key}.idle"


def is_consuming(consumer, key: WorkerKey) -> bool:
    return consumer.task_consumer is not None and any(q.name == key.queue for q in consumer.task_consumer.queues)


def _served_keys(consumer) -> list[WorkerKey]:
    managed = managed_key()
    if managed is not None:
        return [managed]
    keys = []
    for name in consumer.app.amqp.queues.consume_from:
        try:
            keys.append(WorkerKey.parse(name))
        except ValueError:
            continue  # a control queue, not an annotation queue
    return keys


def on_worker_ready(consumer) -> None:
    """Any worker process: flush what a crash left unwritten, then start flushing; a managed one also applies
    its desired state and starts beating."""
    try:
        process_flusher().start(_served_keys(consumer))
        process_batcher().start(_served_keys(consumer), worker=consumer.hostname or "")
        managed = managed_key()
        if managed is not None:
            _apply_desired_state(consumer, managed)
    finally:
        close_old_connections()  # the consumer thread keeps none: a small pool serves the task threads


def on_worker_shutdown() -> None:
    process_batcher().stop()
    process_flusher().stop()


def _apply_desired_state(consumer, key: WorkerKey) -> None:
    worker = Worker.objects.select_related("annotator", "domain").get(annotator__number=key.annotator,
                                                                       domain__slug=key.domain)
    Heartbeat(consumer, key).start()
    InflightController(consumer, key, lambda: is_consuming(consumer, key)).start()
    group = os.environ.get(START_GROUP_ENV, "")
    if worker.desired_state == Worker.Desired.RUNNING and group:
        threading.Thread(target=_consume_with_group, args=(consumer, key, group), name="fleet-start-group",
                         daemon=True).start()
        return
    _ready(consumer, key, worker)


def _ready(consumer, key: WorkerKey, worker: Worker) -> None:
    running = worker.desired_state == Worker.Desired.RUNNING
    if running:
        consumer.call_soon(consumer.add_task_queue, key.queue)
    state = Worker.Observed.RUNNING if running else Worker.Observed.PAUSED
    force_observed(worker, state, reason="ready", actor=ACTOR, pid=os.getpid(), started_at=timezone.now(),
                   last_error="")
    _yield_the_cpu()


def _yield_the_cpu() -> None:
    """Lower this process to its worker priority now that it is ready, not at fork: on a busy host a launch then
    boots at the agent's priority and answers in seconds (at nice 10 beside busy nice-0 processes, thirty workers
    took over a minute to boot), while the annotation work that follows yields to the pages and the agent.
    Linux keeps a nice value per thread, so every thread is set; threads started later inherit it."""
    wanted = os.environ.get(NICE_ENV)
    if wanted is None:
        return
    for _ in range(2):  # a thread started during the first pass by a thread not yet lowered is caught by the second
        for tid in os.listdir("/proc/self/task"):
            try:
                os.setpriority(os.PRIO_PROCESS, int(tid), int(wanted))
            except (ProcessLookupError, PermissionError):
                pass  # the thread ended meanwhile; or a priority above ours, which we may not raise: keep it


def _consume_with_group(consumer, key: WorkerKey, group: str) -> None:
    """Wait (at most START_GROUP_SECONDS) until every process the agent started with this one is ready, then
    apply the desired state as it is by then (a pause may have come meanwhile)."""
    size = int(group.rsplit(":", 1)[1])
    name = redis_key("start-group", group)
    deadline = time.monotonic() + START_GROUP_SECONDS
    try:
        client = get_redis()
        client.incr(name)
        client.expire(name, 2 * START_GROUP_SECONDS)
        while int(client.get(name) or 0) < size and time.monotonic() < deadline:
            time.sleep(0.05)
    except RedisError:
        log.warning("start group of %s unreachable; starting alone", key, exc_info=True)
    try:
        _ready(consumer, key, Worker.objects.select_related("annotator", "domain").get(
            annotator__number=key.annotator, domain__slug=key.domain))
    finally:
        close_old_connections()


class Heartbeat(threading.Thread):
    def __init__(self, consumer, key: WorkerKey):
        super().__init__(name="fleet-heartbeat", daemon=True)
        self.consumer = consumer
        self.key = key
        self.process = psutil.Process()

    def beat(self) -> None:
        write_heartbeat(self.key, at=time.time(), pid=self.process.pid, rss=self.process.memory_info().rss,
                        consuming=is_consuming(self.consumer, self.key), current=list(current_samples.values()),
                        inflight_target=process_gate().size or None)

    def run(self) -> None:
        while True:
            try:
                self.beat()
            except Exception:  # a missed beat is what health checks are for; keep beating
                log.warning("heartbeat of %s failed", self.key, exc_info=True)
            finally:
                close_old_connections()
            time.sleep(settings.HEARTBEAT_SECONDS)


def _managed_or_refuse() -> WorkerKey:
    key = managed_key()
    if key is None:
        raise RuntimeError("not a fleet-managed worker")
    return key


@control_command()
def fleet_pause(state, **_) -> dict:
    """Stop consuming this worker's annotation queue (the running task finishes), then flush its workbook.

    One broadcast to the exact nodes pauses many workers at once: each knows its own queue, so the caller
    needs no per-worker round trip.
    """
    key = _managed_or_refuse()
    state.consumer.call_soon(state.consumer.cancel_task_queue, key.queue)
    process_flusher().flush([key])
    return {"ok": "paused"}


@control_command()
def fleet_resume(state, **_) -> dict:
    key = _managed_or_refuse()
    state.consumer.call_soon(state.consumer.add_task_queue, key.queue)
    return {"ok": "consuming"}
