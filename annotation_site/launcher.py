"""`./run.sh`: set the product up (idempotently) and run its processes until Ctrl-C.

It finds or starts Redis before Django reads its settings, prepares the database and the
catalogue, then starts the web server (and the other long-running processes) as its children
and stops them all, cleanly, on Ctrl-C or SIGTERM.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from .env import document_env
from .redis_service import RedisService, RedisUnavailable, ensure_redis

BASE_DIR = Path(__file__).resolve().parent.parent
ACCESS_LOG = "web-access.log"
RULE = "─" * 72
document_env("LOCAL_LLM", "", values="1", doc="1: ./run.sh also runs the local model server, as with --local-llm")


def say(message: str) -> None:
    print(f"[run] {message}", flush=True)


def port_is_free(port: int) -> bool:
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def choose_port() -> int:
    wanted = int(os.environ.get("PORT", "8000"))
    if port_is_free(wanted):
        return wanted
    if "PORT" in os.environ:
        raise SystemExit(f"[run] port {wanted} (PORT) is already in use; choose another PORT")
    for candidate in range(wanted + 1, wanted + 100):
        if port_is_free(candidate):
            say(f"port {wanted} is busy; using {candidate}")
            return candidate
    raise SystemExit("[run] no free port found near 8000; set PORT")


def prepare_database() -> str:
    """Migrate, seed and import the demo corpus; return the admin login line to print."""
    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command
    from django.db import connections

    say("migrating the database …")
    call_command("migrate", interactive=False, verbosity=0)
    call_command("collectstatic", interactive=False, verbosity=0)
    call_command("seed_defaults")
    say("importing the demo corpus …")
    call_command("import_corpus", str(settings.DEMO_CORPUS))
    from workers_app.admin_login import ensure_admin

    login = ensure_admin(actor="system:run")
    from workers_app.fleet.install import check_install

    check_install()  # before any process starts: this install's database and Redis keys are its own
    connections.close_all()
    return login


def django_ready() -> bool:
    from django.apps import apps

    return apps.ready


def admin_login_hint() -> str:
    from workers_app.admin_login import admin_login_hint

    return admin_login_hint()


def _start(command: list[str]) -> subprocess.Popen:
    # Its own process group: a stop reaches the whole tree (gunicorn's workers, a worker's threads), and
    # Ctrl-C in the terminal reaches only this launcher, which stops everything in order.
    return subprocess.Popen(command, cwd=BASE_DIR, start_new_session=True)


def logs_dir() -> Path:
    path = Path(os.environ["DATA_DIR"]) / "logs"
    path.mkdir(parents=True, exist_ok=True)
    return path


def web_command(port: int) -> list[str]:
    # Every request goes to the access log file, not the terminal: an open dashboard polls once a second.
    return [sys.executable, "-m", "gunicorn", "annotation_site.wsgi", "--bind", f"127.0.0.1:{port}",
            "--workers", "2", "--threads", "4", "--access-logfile", str(logs_dir() / ACCESS_LOG),
            "--log-level", "warning"]


def start_web(port: int) -> subprocess.Popen:
    return _start(web_command(port))


def start_agent() -> subprocess.Popen:
    return _start([sys.executable, "manage.py", "fleet_agent"])


# --quiet: no start-up banner in the terminal (warnings and errors still show).
CELERY = [sys.executable, "-m", "celery", "-A", "annotation_site", "--quiet"]
# Beat sends the periodic health, metrics and integrity tasks; a small worker on the control queue runs them.
CONTROL_WORKER = [*CELERY, "worker", "-Q", "control", "-n", "control@%h", "-P", "threads", "-c", "2",
                  "--without-mingle", "--without-gossip", "-l", "WARNING"]
BEAT = [*CELERY, "beat", "-l", "WARNING"]


def start_control_worker() -> subprocess.Popen:
    return _start(CONTROL_WORKER)


def start_beat() -> subprocess.Popen:
    return _start(BEAT)


def launch_fleet() -> None:
    """Launch every worker through the same service staff use, so a new user sees work flowing."""
    say("launching the 30 workers …")
    result = subprocess.run([sys.executable, "manage.py", "workers", "launch", "--all", "--json"], cwd=BASE_DIR,
                            capture_output=True, text=True, check=False)
    try:
        results = json.loads(result.stdout)
    except ValueError:
        say(f"could not launch the fleet: {result.stderr.strip()[-500:]}")
        return
    running = sum(1 for r in results if r["ok"])
    say(f"{running} of {len(results)} workers running; watch them on the dashboard")


def workspace_url(port: int) -> str:
    return f"http://127.0.0.1:{port}/dashboard/"


def wait_for_web(port: int, timeout: float = 30.0) -> bool:
    """Until the web server answers (its start-up lines are printed by then), at most ``timeout`` seconds. Plain
    urllib: an HTTP client that logs each request would print a line of its own."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as answer:
                if answer.status == 200:
                    return True
        except OSError:  # refused while it starts, or an HTTP error
            pass
        time.sleep(0.3)
    return False


def ready_lines(port: int, login: str) -> list[str]:
    """What the terminal ends its start-up with, whatever the children printed before: where to go and how to log
    in (said once before already), and where the logs are."""
    logs = logs_dir()
    return [RULE, f"Ready. The workspace is at {workspace_url(port)} (the admin at /admin/)", login,
            f"Logs: every request in {logs / ACCESS_LOG}, each worker's in {logs}/", "Press Ctrl-C to stop everything.",
            RULE]


def start_local_llm() -> subprocess.Popen:
    from .local_llm import ensure_installed, start_server

    ensure_installed(say)
    port = int(os.environ.get("LOCAL_LLM_PORT", "8081"))
    say(f"starting the local model server (llama.cpp, Gemma 3 270M) on 127.0.0.1:{port} …")
    return start_server(port, Path(os.environ["DATA_DIR"]) / "local-llm.log")


STOP_GRACE_SECONDS = 30


def stop_children(children: dict[str, subprocess.Popen], redis_service: RedisService) -> None:
    """SIGTERM to each child's process group, newest first; SIGKILL to the groups still there after the grace."""
    for name, process in reversed(children.items()):
        if process.poll() is None:
            say(f"stopping the {name} …")
            _signal_group(process, signal.SIGTERM)
    deadline = time.monotonic() + STOP_GRACE_SECONDS
    for name, process in children.items():
        try:
            process.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            say(f"the {name} did not stop within {STOP_GRACE_SECONDS} s; killing it")
        _signal_group(process, signal.SIGKILL)  # whatever of its tree is left, e.g. an orphaned gunicorn worker
        process.wait()
    if redis_service.private:
        say("stopping the private Redis …")
        redis_service.stop()
    elif django_ready():
        from workers_app.fleet.install import release_namespace

        try:
            say(f"removed this install's {release_namespace()} keys from the shared Redis (rebuilt at the next start)")
        except Exception as exc:  # noqa: BLE001  a Redis gone away: nothing of ours is left in it to remove
            say(f"could not tidy the shared Redis ({exc.__class__.__name__}); its keys of this install stay")


def _signal_group(process: subprocess.Popen, sig: int) -> None:
    try:
        os.killpg(process.pid, sig)
    except (ProcessLookupError, PermissionError):
        pass  # the group is gone already


# Exits that a restart cannot mend.
FINAL_EXITS = {("fleet agent", 3): "another fleet agent runs for this host (a second ./run.sh on the same data?)",
               ("fleet agent", 4): "another install holds this install's Redis keys (see the agent's log above)"}


class ChildCannotRun(RuntimeError):
    pass


def watch(children: dict[str, subprocess.Popen], starters: dict, should_stop) -> None:
    """Restart any child that exits (the agent after a crash, the model server), until asked to stop."""
    while not should_stop():
        for name, process in list(children.items()):
            if process.poll() is None or should_stop():
                continue
            if (name, process.returncode) in FINAL_EXITS:
                raise ChildCannotRun(f"the {name} exited: {FINAL_EXITS[name, process.returncode]}")
            say(f"the {name} exited with status {process.returncode}; restarting it")
            children[name] = starters[name]()
        time.sleep(0.5)


def main() -> int:
    parser = argparse.ArgumentParser(prog="run.sh", description="Set up and run the annotation fleet console.")
    parser.add_argument("--local-llm", action="store_true",
                        help="also run a local model server (llama.cpp + Gemma 3 270M; installed on first use)")
    options = parser.parse_args()
    os.chdir(BASE_DIR)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "annotation_site.settings")
    data_dir = Path(os.environ.get("DATA_DIR", BASE_DIR / "data")).resolve()
    os.environ["DATA_DIR"] = str(data_dir)
    try:
        redis_service = ensure_redis(os.environ.get("REDIS_URL"), data_dir / "redis")
    except RedisUnavailable as exc:
        say(f"error: {exc}")
        return 2
    os.environ["REDIS_URL"] = redis_service.url
    say(("started a private Redis at " if redis_service.private else "using Redis at ") + redis_service.url)

    stopping = False

    def request_stop(signum, frame):
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)
    children: dict[str, subprocess.Popen] = {}
    try:
        say(prepare_database())
        port = choose_port()
        starters = {"web server": lambda: start_web(port), "fleet agent": start_agent,
                    "control worker": start_control_worker, "beat": start_beat}
        if options.local_llm or os.environ.get("LOCAL_LLM") == "1":
            starters = {"local model server": start_local_llm, **starters}
        for name, start in starters.items():
            children[name] = start()
        say(f"the workspace will be at {workspace_url(port)} once it has started")
        launch_fleet()
        wait_for_web(port)
        for line in ready_lines(port, admin_login_hint()):
            say(line)
        watch(children, starters, lambda: stopping)
    except Exception as exc:  # noqa: BLE001  one clear line, not a traceback: the logs have the detail
        say(f"error: {exc}" if isinstance(exc, ChildCannotRun) else f"error: {exc.__class__.__name__}: {exc}")
        say(f"details: the output above and {data_dir / 'logs'}; stopping everything")
        return 1
    finally:
        stop_children(children, redis_service)
        say("stopped.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
