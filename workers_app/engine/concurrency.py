"""How many LLM requests a worker process has in flight: a gate every request passes before its rate-limit slot.

The gate is a semaphore whose size the worker's controller (``workers_app.fleet.inflight``) changes while threads
wait on it; it also measures how long answers take, which the controller needs. A process without a controller
(a plain Celery worker, a test calling the engine directly) has an open gate.
"""

from __future__ import annotations

import threading
import time
from functools import cache
from typing import Self

from .ratelimit import RateLimiter, Slot

# Weight of the newest answer in the latency average: about the last ten answers count.
LATENCY_WEIGHT = 0.1


class Gate:
    """At most ``size`` requests inside (None: no limit); a smaller size lets no one in until enough have left."""

    def __init__(self) -> None:
        self._changed = threading.Condition()
        self.size: int | None = None
        self.inside = 0
        self.waiting = 0
        self.latency_s: float | None = None  # moving average of answered requests
        self.first_answer = threading.Event()

    def resize(self, size: int) -> None:
        with self._changed:
            self.size = size
            self._changed.notify_all()

    def enter(self, deadline: float) -> None:
        """Wait for room until ``deadline`` (monotonic seconds); TimeoutError past it."""
        with self._changed:
            self.waiting += 1
            try:
                while self.size is not None and self.inside >= self.size:
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        raise TimeoutError("concurrency gate: no room before the deadline")
                    self._changed.wait(remaining)
                self.inside += 1
            finally:
                self.waiting -= 1

    def leave(self, answered_in: float | None) -> None:
        with self._changed:
            self.inside -= 1
            if answered_in is not None:
                previous = self.latency_s
                self.latency_s = answered_in if previous is None else (
                    previous + LATENCY_WEIGHT * (answered_in - previous))
                self.first_answer.set()
            self._changed.notify()

    @property
    def held(self) -> int:
        """Requests inside or waiting to enter: this process's part of its queue's demand."""
        with self._changed:
            return self.inside + self.waiting


@cache
def process_gate() -> Gate:
    """The one gate of this worker process, shared by its task threads and its controller."""
    return Gate()


class Admission:
    """A request let through the gate with its rate-limit slot; used as a context manager around the request."""

    def __init__(self, gate: Gate, slot: Slot):
        self.gate = gate
        self.slot = slot
        self.sent = 0.0

    def __enter__(self) -> Self:
        self.slot.__enter__()
        self.sent = time.monotonic()
        return self

    def __exit__(self, exc_type, *exc_info: object) -> None:
        try:
            self.slot.__exit__(exc_type, *exc_info)
        finally:
            self.gate.leave(time.monotonic() - self.sent if exc_type is None else None)


def admit(limiter: RateLimiter, deadline: float) -> Admission:
    """Pass this process's gate, then take a rate-limit slot; TimeoutError if either lies beyond ``deadline``.

    The gate comes first: a slot taken and then held back by the gate would be a request the limit allowed and
    nobody sent."""
    gate = process_gate()
    gate.enter(deadline)
    try:
        slot = limiter.acquire(deadline)
    except BaseException:
        gate.leave(None)
        raise
    return Admission(gate, slot)
