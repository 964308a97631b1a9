"""bench/web: the dashboard's server time, and how it answers 10 concurrent viewers while the fleet works.

The change measured: the workers run at a lower CPU priority than the web server (FLEET_WORKER_NICE=10, the
default). Its baseline is the same page with the same viewers during the same full run, the workers at the web
server's priority (FLEET_WORKER_NICE=0). The two configurations alternate, 3 times each.

Each run is on a fresh DATA_DIR, private Redis and fresh database, with the real 1,871 posts: `migrate`,
`seed_defaults`, `import_corpus`, a staff user and a day of per-minute metrics for the 30 workers (43,200 rows, which
the charts read), the web server exactly as ./run.sh starts it (gunicorn, 2 processes x 4 threads), one
`fleet_agent`, then `workers launch --all` (the full run of the built-in annotator, 56,130 annotations by 30 busy
worker processes on this machine's cores). Measured:

- during the full run: 10 viewers, each loading /dashboard/ once and then polling /dashboard/live every second as
  the page does; every answer's time (median, p95, errors);
- after it (an idle fleet), in the default configuration: the server time of /dashboard/, /dashboard/charts and
  /dashboard/live, median of 20 sequential requests each over loopback HTTP. /dashboard/live is answered from a
  snapshot the viewers share for half a second; its baseline is the same endpoint made afresh (the shared snapshot
  deleted before each request).

Run: .venv/bin/python bench/web.py [--postgres URL] [--repeats 3] [--quick]
     (--quick: 20 posts, one worker, 2 viewers, 3 requests per page, workbooks flushed every second, one run of each
      configuration)
"""

from __future__ import annotations

import argparse
import atexit
import os
import shutil
import statistics
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import httpx
from _setup import QUICK_POSTS, ROOT, Results, arguments, corpus_file
from full_run import PYTHON, Database, Shape, clean_environment, database_name, fresh_database, manage

from annotation_site.launcher import choose_port, start_web
from annotation_site.redis_service import start_private

VIEWERS = 10
POLL_SECONDS = 1.0
REQUESTS = 20
REPEATS = 3
PASSWORD = "bench-web-password"
INSTALL_ID = "bench-web"  # every run's install: so this process knows the prefix of the Redis keys
CONFIGS = {"dashboard": "10", "dashboard-nice0": "0"}  # FLEET_WORKER_NICE
NICE0 = "the same, workers at the web server's priority (FLEET_WORKER_NICE=0)"
FIGURES = {
    "viewers_p95": {"about": "10 viewers of the dashboard (the page once, then its live update every second) during "
                             "a full run of the 1,871 real posts × 30 workers (built-in annotator), gunicorn as "
                             "`./run.sh` starts it, workers at nice 10 (the default): p95 of the answer times",
                    "unit": "ms", "goal": "<= 1000", "baseline": NICE0},
    "viewers_median": {"about": "the same: median answer time", "unit": "ms", "baseline": NICE0},
    "viewer_errors": {"about": "the same: requests that failed", "unit": "requests", "goal": "== 0",
                      "baseline": NICE0},
    "dashboard_page": {"about": "`/dashboard/` afterwards (30 workers, 56,130 outcomes, a day of per-minute metrics), "
                                "median of 20 over loopback HTTP", "unit": "ms", "goal": "<= 100"},
    "live": {"about": "`/dashboard/live` afterwards, as viewers get it (the snapshot shared for half a second)",
             "unit": "ms", "goal": "<= 100", "baseline": "the same endpoint made afresh for each request"},
    "charts": {"about": "`/dashboard/charts` afterwards", "unit": "ms", "goal": "<= 100"},
}

# Migrate, seed, import, a staff user, and the metrics history, in one process.
SETUP = """
from datetime import timedelta
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.utils import timezone
call_command("migrate", verbosity=0)
call_command("seed_defaults", verbosity=0)
call_command("import_corpus", {corpus!r}, verbosity=0)
get_user_model().objects.create_superuser("bench", "bench@example.org", {password!r})
from workers_app.fleet.rows import ensure_worker_rows
from workers_app.models import Worker, WorkerMetric
ensure_worker_rows()
now = timezone.now().replace(second=0, microsecond=0)
WorkerMetric.objects.bulk_create((WorkerMetric(worker=w, at=now - timedelta(minutes=m), throughput=30 + m % 7,
    malformed_rate=0.01, queue_length=max(0, 1871 - m), latency_p50_ms=20, latency_p95_ms=40, rss=120_000_000)
    for w in Worker.objects.all() for m in range(1, {minutes} + 1)), batch_size=5000)
"""


class Plan:
    """The shape of a run: full, or (--quick) tiny."""

    def __init__(self, quick: bool):
        self.quick = quick
        self.shape = Shape(quick)
        self.viewers = 2 if quick else VIEWERS
        self.requests = 3 if quick else REQUESTS
        self.metric_minutes = 60 if quick else 1440


def logged_in(base: str) -> httpx.Client:
    """A client with a staff session, logged in through the admin's form as a person would."""
    client = httpx.Client(base_url=base, timeout=60)
    client.get("/admin/login/")
    answer = client.post("/admin/login/", data={"username": "bench", "password": PASSWORD, "next": "/admin/",
                                                "csrfmiddlewaretoken": client.cookies["csrftoken"]},
                         headers={"Referer": f"{base}/admin/login/"})
    if "sessionid" not in client.cookies:
        raise RuntimeError(f"login failed: HTTP {answer.status_code}")
    return client


def viewer(client: httpx.Client, stop: threading.Event, times: list[float], errors: list[str]) -> None:
    path = "/dashboard/"
    while not stop.is_set():
        started = time.perf_counter()
        try:
            status = client.get(path).status_code
            if status != 200:
                errors.append(f"{path}: HTTP {status}")
        except httpx.HTTPError as exc:
            errors.append(f"{path}: {exc.__class__.__name__}")
        elapsed = time.perf_counter() - started
        times.append(elapsed * 1000)
        path = "/dashboard/live"
        stop.wait(max(0.0, POLL_SECONDS - elapsed))


def p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))]


def server_times(client: httpx.Client, redis_url: str, requests: int) -> dict[str, float]:
    """Median ms per page; the live update twice: as viewers mostly get it, and made afresh."""
    import redis

    from workspace.dashboard.snapshot import SHARED_KEY

    shared = redis.Redis.from_url(redis_url)
    found = {}
    for name, path, fresh in (("dashboard_page", "/dashboard/", False), ("charts", "/dashboard/charts", False),
                              ("live", "/dashboard/live", False), ("live_afresh", "/dashboard/live", True)):
        client.get(path).raise_for_status()  # warm: templates and imports
        if fresh and not shared.exists(SHARED_KEY):
            raise RuntimeError(f"no shared snapshot at {SHARED_KEY} right after a request: the key has moved")
        times = []
        for _ in range(requests):
            if fresh:
                shared.delete(SHARED_KEY)
            started = time.perf_counter()
            client.get(path).raise_for_status()
            times.append((time.perf_counter() - started) * 1000)
        found[name] = statistics.median(times)
    return found


def full_run_with_viewers(env: dict, db: Database, base: str, plan: Plan) -> dict:
    expected = db.query("SELECT count(*) FROM workers_app_sample")[0][0] * plan.shape.workers
    clients = [logged_in(base) for _ in range(plan.viewers)]
    stop, times, errors = threading.Event(), [], []
    agent = subprocess.Popen([PYTHON, "manage.py", "fleet_agent"], cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
    try:
        time.sleep(plan.shape.settle)  # the agent imports Django and Celery once, before any launch
        threads = [threading.Thread(target=viewer, args=(c, stop, times, errors), daemon=True) for c in clients]
        started = time.perf_counter()
        launch = subprocess.Popen([PYTHON, "manage.py", "workers", "launch", *plan.shape.scope], cwd=ROOT, env=env,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        for thread in threads:
            thread.start()
        while db.query("SELECT count(*) FROM workers_app_outcome")[0][0] < expected:
            if time.perf_counter() - started > 900:
                raise TimeoutError("the full run did not end within 900 s")
            if agent.poll() is not None:
                raise RuntimeError(f"the fleet agent exited with {agent.returncode}")
            time.sleep(0.5)
        run_seconds = time.perf_counter() - started
        stop.set()
        for thread in threads:
            thread.join()
        launch.wait(timeout=120)
        idle = server_times(clients[0], env["REDIS_URL"], plan.requests)
    finally:
        stop.set()
        agent.terminate()
        agent.wait(timeout=120)
        for client in clients:
            client.close()
    if not times:
        raise RuntimeError("the viewers made no request during the run")
    return {"run_seconds": run_seconds, "median": statistics.median(times), "p95": p95(times),
            "max": max(times), "requests": len(times), "errors": errors, "idle": idle}


def one_config(name: str, postgres: str | None, plan: Plan) -> dict:
    data_dir = Path(tempfile.mkdtemp(prefix="bench-web-"))
    redis = start_private(data_dir / "redis", persist=False)
    saved = dict(os.environ)
    try:
        with fresh_database(postgres, data_dir) as url:
            env = {**clean_environment(), "DATA_DIR": str(data_dir), "REDIS_URL": redis.url, "DATABASE_URL": url,
                   "INSTALL_ID": INSTALL_ID, "FLEET_HOST": "bench", "FLEET_WORKER_NICE": CONFIGS[name],
                   **plan.shape.env}
            corpus = corpus_file(QUICK_POSTS if plan.quick else None, data_dir)
            manage(ROOT, env, "shell", "-c", SETUP.format(corpus=str(corpus), password=PASSWORD,
                                                          minutes=plan.metric_minutes))
            os.environ.clear()
            os.environ.update(env)
            port = choose_port()
            web = start_web(port)
            db = Database(url)
            try:
                wait_for_web(f"http://127.0.0.1:{port}")
                return full_run_with_viewers(env, db, f"http://127.0.0.1:{port}", plan)
            finally:
                web.terminate()
                web.wait(timeout=60)
                db.close()
    finally:
        os.environ.clear()
        os.environ.update(saved)
        redis.stop()
        shutil.rmtree(data_dir, ignore_errors=True)


def wait_for_web(base: str) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{base}/healthz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise RuntimeError("the web server did not answer within 60 s")


def django_for_keys() -> None:
    """Django in this process, only to name the Redis keys of the runs' install (INSTALL_ID) as the product does."""
    reader = tempfile.mkdtemp(prefix="bench-web-reader-")
    atexit.register(shutil.rmtree, reader, ignore_errors=True)
    os.environ.update({"DJANGO_SETTINGS_MODULE": "annotation_site.settings", "DATA_DIR": reader,
                       "INSTALL_ID": INSTALL_ID})
    import django

    django.setup()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--postgres", help="a PostgreSQL URL whose server may create a database for the runs")
    parser.add_argument("--repeats", type=int, default=REPEATS, help="runs of each configuration, alternating")
    args = arguments(parser)
    plan = Plan(args.quick)
    results = Results(__file__, FIGURES, quick=args.quick)
    django_for_keys()
    results.database(database_name(args.postgres))
    print(f"{database_name(args.postgres)}, {os.cpu_count()} cores, {plan.viewers} viewers polling "
          f"every {POLL_SECONDS:.0f} s; load before: {os.getloadavg()[0]:.1f}")
    runs: dict[str, list[dict]] = {name: [] for name in CONFIGS}
    for _ in range(1 if args.quick else args.repeats):
        for name, found in runs.items():
            result = one_config(name, args.postgres, plan)
            found.append(result)
            print(f"{name}: full run {result['run_seconds']:.1f} s; during it: median {result['median']:.0f} ms, "
                  f"p95 {result['p95']:.0f} ms, max {result['max']:.0f} ms, {result['requests']} requests, errors "
                  f"{len(result['errors'])}{' e.g. ' + result['errors'][0] if result['errors'] else ''}", flush=True)
            print("  after it, server time (median): " + ", ".join(
                f"{page} {ms:.1f} ms" for page, ms in result["idle"].items()), flush=True)
    mine, nice0 = runs["dashboard"], runs["dashboard-nice0"]
    for figure, field in (("viewers_p95", "p95"), ("viewers_median", "median")):
        results.add(figure, [r[field] for r in mine], baseline=[r[field] for r in nice0])
    results.add("viewer_errors", [len(r["errors"]) for r in mine], baseline=[len(r["errors"]) for r in nice0])
    results.add("dashboard_page", [r["idle"]["dashboard_page"] for r in mine])
    results.add("live", [r["idle"]["live"] for r in mine], baseline=[r["idle"]["live_afresh"] for r in mine])
    results.add("charts", [r["idle"]["charts"] for r in mine])
    results.write()


if __name__ == "__main__":
    main()
