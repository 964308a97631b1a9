"""./run.sh's launcher as a user runs it: its own ports for the console and the model server, a crashed agent
brought back, and Ctrl-C leaving no process of the product behind and a shared Redis as it found it."""

from __future__ import annotations

import os
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import httpx
import psutil
import redis
from django.conf import settings

ROOT = Path(__file__).resolve().parents[1]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait(condition, timeout: float, what: str, log: Path) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}:\n{log.read_text()[-3000:]}"
        time.sleep(0.5)


def _command_line(process: psutil.Process) -> str:
    try:
        return " ".join(process.cmdline())
    except psutil.Error:
        return ""  # gone (or a zombie) since the listing


def _agents(launcher: psutil.Process) -> list[psutil.Process]:
    return [p for p in launcher.children(recursive=True) if "fleet agent" in _command_line(p)
            or "fleet_agent" in _command_line(p)]


def _outcomes(database: Path) -> int:
    with sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=10) as connection:
        return connection.execute("SELECT count(*) FROM workers_app_outcome").fetchone()[0]


def test_run_sh_uses_its_ports_restarts_a_killed_agent_and_leaves_nothing_behind(tmp_path):
    web_port, model_port = _free_port(), _free_port()
    redis_url = re.sub(r"/\d+$", "/14", settings.REDIS_URL)
    environment = {**{k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "DJANGO_SETTINGS_MODULE")},
                   "DATA_DIR": str(tmp_path / "data"), "REDIS_URL": redis_url, "PORT": str(web_port),
                   "LOCAL_LLM_PORT": str(model_port), "FLEET_HOST": "launcher-test"}
    shared = redis.Redis.from_url(redis_url, decode_responses=True)
    shared.set("another-product:queue", "theirs")  # the Redis is shared: run.sh must leave it as it found it
    log = tmp_path / "run.log"
    with log.open("w") as out:
        launcher = subprocess.Popen([sys.executable, "-m", "annotation_site.launcher", "--local-llm"], cwd=ROOT,
                                    env=environment, stdout=out, stderr=subprocess.STDOUT)
    tree: list[psutil.Process] = []
    try:
        _wait(lambda: "Press Ctrl-C" in log.read_text() or launcher.poll() is not None, 300, "the console", log)
        assert launcher.poll() is None, log.read_text()[-3000:]
        text = log.read_text()
        assert f"http://127.0.0.1:{web_port}/dashboard/" in text and "password:" in text
        assert (tmp_path / "data" / "admin_password").stat().st_mode & 0o077 == 0
        assert httpx.get(f"http://127.0.0.1:{web_port}/healthz", timeout=5).status_code == 200
        # Start-up ends with where to go and how to log in, said again below whatever the children printed; requests
        # go to the access log file, not the terminal.
        ready = text[text.rindex("Ready. The workspace is at"):]
        assert f"http://127.0.0.1:{web_port}/dashboard/" in ready and "Log in as 'admin'" in ready
        assert text.count(f"http://127.0.0.1:{web_port}/dashboard/") >= 2
        for _ in range(3):
            httpx.get(f"http://127.0.0.1:{web_port}/dashboard/live", timeout=5)
        access = tmp_path / "data" / "logs" / "web-access.log"
        _wait(lambda: "GET /dashboard/live" in access.read_text(), 10, "the access log", log)
        assert "GET /healthz" in access.read_text() and "GET /dashboard/live" not in log.read_text()
        assert "celery beat v" not in text and "[queues]" not in text  # no start-up banners
        assert httpx.get(f"http://127.0.0.1:{model_port}/v1/models", timeout=5).status_code == 200

        process = psutil.Process(launcher.pid)
        [agent] = _agents(process)
        agent.kill()
        _wait(lambda: [a.pid for a in _agents(process)] not in ([], [agent.pid]), 30, "a new agent", log)
        assert "the fleet agent exited" in log.read_text() and launcher.poll() is None
        # ... and the demo run (40 posts x 30 workers) finishes.
        _wait(lambda: _outcomes(tmp_path / "data" / "db.sqlite3") == 40 * 30, 120, "the demo run to finish", log)
        tree = process.children(recursive=True)
        assert len(tree) >= 6
    finally:
        launcher.send_signal(signal.SIGINT)
        launcher.wait(timeout=120)
    try:
        assert shared.keys("*") == ["another-product:queue"]
    finally:
        shared.flushdb()  # its own database of the test Redis
    assert "removed this install's" in log.read_text()
    assert log.read_text().rstrip().endswith("[run] stopped.")
    time.sleep(1)
    assert [p.pid for p in tree if _alive(p)] == []


def _alive(process: psutil.Process) -> bool:
    try:
        return process.is_running() and process.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False
