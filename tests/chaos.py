"""Faults for chaos runs (the suite's test and bench/chaos.py): kill a random worker, restart Redis empty, wipe it."""

from __future__ import annotations

import os
import random
import signal
import threading
import time

import redis


def kill_random_worker(pids: list[int]) -> int | None:
    alive = [pid for pid in pids if pid]
    if not alive:
        return None
    victim = random.choice(alive)
    try:
        os.kill(victim, signal.SIGKILL)
    except ProcessLookupError:
        return None
    return victim


def restart_redis_empty(url: str, seconds: float) -> None:
    """What clients see of a Redis restarted without persistence: it does not answer for ``seconds``, then every
    connection is dropped and the data is gone."""
    client = redis.Redis.from_url(url)
    client.execute_command("CLIENT", "PAUSE", int(seconds * 1000), "ALL")
    time.sleep(seconds)
    client.flushall()
    for kind in ("normal", "pubsub"):
        client.execute_command("CLIENT", "KILL", "TYPE", kind, "SKIPME", "yes")


def wipe_redis(url: str) -> None:
    redis.Redis.from_url(url).flushall()


class Chaos(threading.Thread):
    """Every ``kill_every`` seconds a random worker is SIGKILLed; once an outage-and-empty-restart, once a wipe."""

    def __init__(self, url: str, worker_pids, *, kill_every: float, outage_at: float, outage_seconds: float,
                 wipe_at: float):
        super().__init__(daemon=True)
        self.url, self.worker_pids = url, worker_pids
        self.kill_every, self.outage_at, self.outage_seconds, self.wipe_at = (kill_every, outage_at, outage_seconds,
                                                                              wipe_at)
        self.stop = threading.Event()
        self.kills = 0
        self.events: list[str] = []

    def run(self) -> None:
        started = time.monotonic()
        next_kill, outage_done, wipe_done = started + self.kill_every, False, False
        while not self.stop.wait(0.2):
            now = time.monotonic() - started
            if not outage_done and now >= self.outage_at:
                restart_redis_empty(self.url, self.outage_seconds)
                outage_done = True
                self.events.append(f"{now:.0f} s: Redis away {self.outage_seconds} s, back empty")
            if not wipe_done and now >= self.wipe_at:
                wipe_redis(self.url)
                wipe_done = True
                self.events.append(f"{now:.0f} s: Redis wiped")
            if time.monotonic() >= next_kill:
                next_kill += self.kill_every
                if kill_random_worker(self.worker_pids()):
                    self.kills += 1
