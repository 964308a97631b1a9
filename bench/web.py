"""bench/web: the dashboard's server time, and how it answers 10 concurrent viewers while the fleet works.

Each configuration runs on a fresh DATA_DIR, private Redis and fresh database, with the real 1,871 posts:
`migrate`, `seed_defaults`, `import_corpus`, a staff login, the web server exactly as ./run.sh starts it (gunicorn,
2 processes x 4 threads), one `fleet_agent`, then `workers launch --all` (the full run of the built-in annotator,
56,130 annotations by 30 busy worker processes on this machine's cores). Measured:

- during the full run: 10 viewers, each loading the page once and then polling as the page does (the dashboard's
  live update every second; the admin's worker list reloaded every second for the baseline), every answer's time
  (median, p95, max, errors);
- after it (30 workers, 56,130 outcomes, an idle fleet): the server time of /dashboard/, /dashboard/live,
  /dashboard/charts and the admin's worker list, median of 20 sequential requests each over loopback HTTP.

Configurations: `admin-nice0` (the admin's worker list, workers at the web server's CPU priority: the baseline the
issue quotes), `dashboard-nice0`, `dashboard` (the default: FLEET_WORKER_NICE=10).

Run: .venv/bin/python bench/web.py [--postgres URL] [--configs dashboard,admin-nice0,dashboard-nice0]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from full_run import CORPUS, PYTHON, WORKERS, Database, fresh_database, manage

from annotation_site.launcher import choose_port, start_web
from annotation_site.redis_service import start_private

VIEWERS = 10
POLL_SECONDS = 1.0
PASSWORD = "bench-web-password"
CONFIGS = {
    "admin-nice0": {"page": "/admin/workers_app/worker/", "poll": "/admin/workers_app/worker/", "nice": "0"},
    "dashboard-nice0": {"page": "/dashboard/", "poll": "/dashboard/live", "nice": "0"},
    "dashboard": {"page": "/dashboard/", "poll": "/dashboard/live", "nice": "10"},
}
SHARED_KEY = "annot:dashboard:live"  # workspace.dashboard.snapshot.SHARED_KEY (that module needs Django loaded)
SERVER_TIME_PATHS = ("/dashboard/", "/dashboard/live", "/dashboard/charts", "/admin/workers_app/worker/")


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


def viewer(client: httpx.Client, config: dict, stop: threading.Event, times: list[float], errors: list[str]) -> None:
    path = config["page"]
    while not stop.is_set():
        started = time.perf_counter()
        try:
            status = client.get(path).status_code
            if status != 200:
                errors.append(f"{path}: HTTP {status}")
        except httpx.HTTPError as exc:
            errors.append(f"{path}: {exc.__class__.__name__}")
        elapsed = time.perf_counter() - started
        times.append(elapsed)
        path = config["poll"]
        stop.wait(max(0.0, POLL_SECONDS - elapsed))


def summary(times: list[float]) -> str:
    if not times:
        return "no requests"
    ordered = sorted(times)
    p95 = ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))]
    return (f"median {statistics.median(ordered) * 1000:.0f} ms, p95 {p95 * 1000:.0f} ms, "
            f"max {ordered[-1] * 1000:.0f} ms, {len(ordered)} requests")


# A day of per-minute metrics for the 30 workers (43,200 rows), as the beat would have recorded them: the charts
# read this history, so their server time is measured on a full day.
SEED_METRICS = """
from datetime import timedelta
from django.utils import timezone
from workers_app.models import Worker, WorkerMetric
now = timezone.now().replace(second=0, microsecond=0)
WorkerMetric.objects.bulk_create((WorkerMetric(worker=w, at=now - timedelta(minutes=m), throughput=30 + m % 7,
    malformed_rate=0.01, queue_length=max(0, 1871 - m), latency_p50_ms=20, latency_p95_ms=40, rss=120_000_000)
    for w in Worker.objects.all() for m in range(1, 1441)), batch_size=5000)
"""


def server_times(client: httpx.Client, redis_url: str) -> dict[str, float]:
    """Median of 20 per page; the live update twice: as viewers mostly get it (the shared snapshot of the last half
    second) and made afresh (the shared copy deleted before each request)."""
    import redis

    shared = redis.Redis.from_url(redis_url)
    found = {}
    for path, fresh in [(p, False) for p in SERVER_TIME_PATHS] + [("/dashboard/live", True)]:
        client.get(path)  # warm: templates and imports
        times = []
        for _ in range(20):
            if fresh:
                shared.delete(SHARED_KEY)
            started = time.perf_counter()
            client.get(path).raise_for_status()
            times.append(time.perf_counter() - started)
        found[path + (" (made afresh)" if fresh else "")] = statistics.median(times)
    return found


def full_run_with_viewers(env: dict, db: Database, config: dict, base: str) -> dict:
    expected = db.query("SELECT count(*) FROM workers_app_sample")[0][0] * WORKERS
    clients = [logged_in(base) for _ in range(VIEWERS)]
    stop, times, errors = threading.Event(), [], []
    agent = subprocess.Popen([PYTHON, "manage.py", "fleet_agent"], cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
    try:
        time.sleep(4)  # the agent imports Django and Celery once, before any launch
        threads = [threading.Thread(target=viewer, args=(c, config, stop, times, errors), daemon=True)
                   for c in clients]
        started = time.perf_counter()
        launch = subprocess.Popen([PYTHON, "manage.py", "workers", "launch", "--all"], cwd=ROOT, env=env,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        for thread in threads:
            thread.start()
        while db.query("SELECT count(*) FROM workers_app_outcome")[0][0] < expected:
            if time.perf_counter() - started > 900:
                raise TimeoutError("the full run did not end within 900 s")
            time.sleep(0.5)
        run_seconds = time.perf_counter() - started
        stop.set()
        for thread in threads:
            thread.join()
        launch.wait(timeout=120)
        manage(ROOT, env, "shell", "-c", SEED_METRICS)
        idle = server_times(clients[0], env["REDIS_URL"])
    finally:
        stop.set()
        agent.terminate()
        agent.wait(timeout=120)
        for client in clients:
            client.close()
    return {"run_seconds": run_seconds, "during": summary(times), "errors": errors, "idle": idle}


def one_config(name: str, postgres: str | None) -> dict:
    config = CONFIGS[name]
    data_dir = Path(tempfile.mkdtemp(prefix="bench-web-"))
    redis = start_private(data_dir / "redis", persist=False)
    saved = dict(os.environ)
    try:
        with fresh_database(postgres, data_dir) as url:
            env = {**os.environ, "DATA_DIR": str(data_dir), "REDIS_URL": redis.url, "DATABASE_URL": url,
                   "FLEET_HOST": "bench", "FLEET_WORKER_NICE": config["nice"], "DJANGO_SUPERUSER_PASSWORD": PASSWORD}
            manage(ROOT, env, "migrate", "-v", "0")
            manage(ROOT, env, "seed_defaults", "-v", "0")
            manage(ROOT, env, "import_corpus", str(CORPUS))
            manage(ROOT, env, "createsuperuser", "--noinput", "--username", "bench", "--email", "bench@example.org")
            os.environ.clear()
            os.environ.update(env)
            port = choose_port()
            web = start_web(port)
            db = Database(url)
            try:
                wait_for_web(f"http://127.0.0.1:{port}")
                return full_run_with_viewers(env, db, config, f"http://127.0.0.1:{port}")
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


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--postgres", help="a PostgreSQL URL whose server may create a database for the run")
    parser.add_argument("--configs", default="admin-nice0,dashboard-nice0,dashboard")
    parser.add_argument("--repeats", type=int, default=1, help="run the list of configurations this many times")
    args = parser.parse_args()
    print(f"{'PostgreSQL' if args.postgres else 'SQLite'}, {os.cpu_count()} cores, corpus {CORPUS.name}, "
          f"{VIEWERS} viewers polling every {POLL_SECONDS:.0f} s; load before: {os.getloadavg()[0]:.1f}")
    for name in args.configs.split(",") * args.repeats:
        result = one_config(name, args.postgres)
        print(f"{name}: full run {result['run_seconds']:.1f} s; during it: {result['during']}; "
              f"errors {len(result['errors'])}{' e.g. ' + result['errors'][0] if result['errors'] else ''}")
        print("  after it, server time (median of 20): " + ", ".join(
            f"{path} {seconds * 1000:.1f} ms" for path, seconds in result["idle"].items()))
    print("goals: /dashboard/ and /dashboard/live <= 100 ms; dashboard viewers' p95 <= 1 s during the full run")


if __name__ == "__main__":
    main()
