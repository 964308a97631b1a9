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
from pathlib import Path

from .redis_service import RedisService, RedisUnavailable, ensure_redis

BASE_DIR = Path(__file__).resolve().parent.parent


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
    connections.close_all()
    return login


def start_children(port: int) -> list[tuple[str, subprocess.Popen]]:
    python = sys.executable
    web = subprocess.Popen(
        [python, "-m", "gunicorn", "annotation_site.wsgi", "--bind", f"127.0.0.1:{port}", "--workers", "2",
         "--threads", "4", "--access-logfile", "-", "--log-level", "warning"],
        cwd=BASE_DIR,
    )
    agent = subprocess.Popen([python, "manage.py", "fleet_agent"], cwd=BASE_DIR)
    # Beat sends the periodic health, metrics and integrity tasks; a small worker on the control queue runs them.
    control = subprocess.Popen([python, "-m", "celery", "-A", "annotation_site", "worker", "-Q", "control", "-n",
                                "control@%h", "-P", "threads", "-c", "2", "--without-mingle", "--without-gossip",
                                "-l", "WARNING"], cwd=BASE_DIR)
    beat = subprocess.Popen([python, "-m", "celery", "-A", "annotation_site", "beat", "-l", "WARNING"], cwd=BASE_DIR)
    return [("web server", web), ("fleet agent", agent), ("control worker", control), ("beat", beat)]


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
    say(f"{running} of {len(results)} workers running; watch them under Annotation → Workers")


def start_local_llm() -> subprocess.Popen:
    from .local_llm import ensure_installed, start_server

    ensure_installed(say)
    port = int(os.environ.get("LOCAL_LLM_PORT", "8081"))
    say(f"starting the local model server (llama.cpp, Gemma 3 270M) on 127.0.0.1:{port} …")
    return start_server(port, Path(os.environ["DATA_DIR"]) / "local-llm.log")


RESTARTABLE = {"local model server": start_local_llm}


def stop_children(children: list[tuple[str, subprocess.Popen]], redis_service: RedisService) -> None:
    for name, process in reversed(children):
        if process.poll() is None:
            say(f"stopping the {name} …")
            process.terminate()
    for _, process in children:
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
    if redis_service.private:
        say("stopping the private Redis …")
        redis_service.stop()


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
    children: list[tuple[str, subprocess.Popen]] = []
    try:
        login = prepare_database()
        port = choose_port()
        if options.local_llm or os.environ.get("LOCAL_LLM") == "1":
            children.append(("local model server", start_local_llm()))
        children += start_children(port)
        launch_fleet()
        say("")
        say(f"The console is at http://127.0.0.1:{port}/admin/")
        say(login)
        say("Press Ctrl-C to stop everything.")
        while not stopping:
            for index, (name, process) in enumerate(children):
                if process.poll() is None:
                    continue
                if name in RESTARTABLE:
                    say(f"the {name} exited with status {process.returncode}; restarting it")
                    children[index] = (name, RESTARTABLE[name]())
                else:
                    say(f"the {name} exited with status {process.returncode}; stopping")
                    stopping = True
            time.sleep(0.5)
    finally:
        stop_children(children, redis_service)
    say("stopped.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
