"""Start real Celery worker processes against the test database, Redis and DATA_DIR."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from django.conf import settings
from django.db import connection

ROOT = Path(__file__).resolve().parents[1]


def test_database_url() -> str:
    db = connection.settings_dict
    if db["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{db['NAME']}"
    auth = db["USER"] + (f":{db['PASSWORD']}" if db["PASSWORD"] else "")
    return f"postgres://{auth}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


def worker_env(**extra: str) -> dict[str, str]:
    """The product's own settings, on the test database, Redis and DATA_DIR; the fake servers live on loopback."""
    return {**os.environ, "DJANGO_SETTINGS_MODULE": "annotation_site.settings", "DATA_DIR": str(settings.DATA_DIR),
            "REDIS_URL": settings.REDIS_URL, "DATABASE_URL": test_database_url(),
            "OUTBOUND_ALLOW": ",".join(settings.OUTBOUND_ALLOW), **extra}


class WorkerProcess:
    def __init__(self, queue: str, *, threads: int = 4, **env: str):
        self.node = f"{queue}@{socket.gethostname()}"
        self.log = settings.DATA_DIR / f"{queue}.{time.monotonic_ns()}.log"
        with self.log.open("w") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "celery", "-A", "annotation_site", "worker", "-Q", queue, "-n", self.node,
                 "-P", "threads", "-c", str(threads), "--without-mingle", "--without-gossip", "-l", "INFO"],
                cwd=ROOT, env=worker_env(**env), stdout=log, stderr=subprocess.STDOUT,
            )

    def wait_ready(self, timeout: float = 30) -> WorkerProcess:
        """Ready, or stopped: a worker left running after a failed start would consume later tests' queues."""
        try:
            return self._wait_ready(timeout)
        except BaseException:
            self.stop()
            raise

    def _wait_ready(self, timeout: float) -> WorkerProcess:
        from annotation_site.celery import app

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"worker exited with {self.process.returncode}:\n{self.log.read_text()[-3000:]}")
            if app.control.ping(destination=[self.node], timeout=0.3):
                return self
        raise TimeoutError(f"worker {self.node} not ready:\n{self.log.read_text()[-3000:]}")

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait()

    def stop(self, timeout: float = 30) -> int:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.kill()
        return self.process.returncode


class AgentProcess:
    """A real fleet agent (the parent of real worker processes) on the test database."""

    def __init__(self, **env: str):
        self.log = settings.DATA_DIR / f"agent.{time.monotonic_ns()}.log"
        settings_env = {"HEARTBEAT_SECONDS": "1", "FLEET_STOP_GRACE_SECONDS": "15", "FLUSH_EVERY_SECONDS": "1",
                        **env}
        with self.log.open("w") as log:
            self.process = subprocess.Popen([sys.executable, "manage.py", "fleet_agent"], cwd=ROOT,
                                            env=worker_env(**settings_env), stdout=log, stderr=subprocess.STDOUT)

    def wait_ready(self, timeout: float = 60) -> AgentProcess:
        """Up and holding its host's lock, so that a test's first launch waits for its worker's boot only (CI
        once gave up on a launch whose 60 s had also covered the agent's own start on a busy machine)."""
        deadline = time.monotonic() + timeout
        while "fleet agent for host" not in self.log.read_text():  # its "… is running" line
            if self.process.poll() is not None:
                raise RuntimeError(f"agent exited with {self.process.returncode}:\n{self.log.read_text()[-3000:]}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"agent not ready after {timeout} s:\n{self.log.read_text()[-3000:]}")
            time.sleep(0.1)
        return self

    def stop(self, timeout: float = 40) -> int:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode


@contextmanager
def running_agent(**env: str) -> Iterator[AgentProcess]:
    """A ready agent for a test; afterwards every worker is stopped with it."""
    from workers_app.models import Worker

    process = AgentProcess(**env).wait_ready()
    try:
        yield process
    finally:
        Worker.objects.update(desired_state=Worker.Desired.STOPPED)
        process.stop()


def assert_all_ok(results: list, agent: AgentProcess | None = None, data_dir: Path | None = None) -> None:
    """A fleet action that failed for a worker shows each worker's result, the end of the agent's log and the end of
    each failed worker's own log (under ``data_dir``, the test's DATA_DIR unless given)."""
    if all(r.ok for r in results):
        return
    logs = (data_dir or settings.DATA_DIR) / "logs"
    shown = [f"agent log:\n{agent.log.read_text()[-4000:]}"] if agent is not None and agent.log.exists() else []
    for result in results:
        own = logs / f"{result.worker}.log"
        if not result.ok:
            shown.append(f"{result.worker} log:\n" + (own.read_text()[-3000:] if own.exists() else "(none written)"))
    raise AssertionError("\n".join([str(results), *shown]))


def forget_broker_connections() -> None:
    """After a test killed every Redis client (a restart), this process's pooled broker connections are dead: a
    later test would meet 'Connection closed by server' on its first control call. Drop the pools."""
    from kombu import pools

    from annotation_site.celery import app

    pools.reset()
    app._after_fork()  # Celery's own way to forget its connection and producer pools
