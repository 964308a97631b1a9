"""bench/web: the dashboard with 400 open LEVEL_4 alerts, 30 workers and 10 viewers, against the previous layout.

The change measured: the grouped alerts and the compact grid (issue 26): open alerts are one line per kind with a
count ("400 posts rated LEVEL_4 await review →") from one grouped query. Its baseline is the previous layout, the
code of commit PREVIOUS (main just before that work was merged: one banner per open alert, the old grid), checked out
beside this one with `git worktree` and measured by the same code here, in the same invocation. The two layouts
alternate (the order swapped each repetition), 3 times each.

Each run is on a fresh DATA_DIR, private Redis and fresh database, with the real 1,871 posts, and each layout runs its
own code throughout: `migrate` (its own migrations), `seed_defaults`, `import_corpus`, a staff user, a day of
per-minute metrics for the 30 workers (43,200 rows, which the charts read), 400 open LEVEL_4 review items and their
400 alerts (opened by the health sweep's own step, `alert_level_4_items`), the web server as ./run.sh starts it
(gunicorn, 2 processes x 4 threads, access log to a file), one `fleet_agent`, then `workers launch --all` (the full
run of the built-in annotator, 56,130 annotations by 30 busy worker processes on this machine's cores). Measured:

- during the full run: 10 viewers, each loading /dashboard/ and its charts once (again every 60 s, as the page does)
  and polling /dashboard/live every second; every answer's time (median, p95, errors);
- after it (an idle fleet, the 400 alerts still open): each page's answer time over loopback HTTP, 20 sequential
  requests (median, p95) and its size (the HTML or JSON as served, uncompressed): /dashboard/, /dashboard/live as
  viewers get it (a snapshot shared for half a second) and made afresh (the shared snapshot deleted before each
  request), /dashboard/charts, and the review queue the alert line links to (/review/?reason=level_4);
- then 10 viewers asking for /dashboard/ back to back for 10 s: pages per second;
- the database queries of one request of each page (Django's test client in the layout's own code, with
  CaptureQueriesContext; the live update made afresh).

Run: .venv/bin/python bench/web.py [--postgres URL] [--previous COMMIT] [--repeats 3] [--quick]
     (--quick: 20 posts and 20 alerts, one worker, 2 viewers, 3 requests per page, 2 s back to back, workbooks
      flushed every second, one run of each layout; on a clone without the previous commit it measures only this
      checkout)
"""

from __future__ import annotations

import argparse
import atexit
import json
import logging
import os
import shutil
import statistics
import subprocess
import tempfile
import threading
import time
from contextlib import nullcontext
from pathlib import Path

import httpx
from _setup import QUICK_POSTS, ROOT, Results, arguments, corpus_file, git
from full_run import PYTHON, Database, Shape, checkout, clean_environment, database_name, fresh_database, manage

from annotation_site.launcher import choose_port, web_command
from annotation_site.redis_service import start_private

VIEWERS = 10
POLL_SECONDS = 1.0
CHARTS_EVERY_SECONDS = 60.0
REQUESTS = 20
BACK_TO_BACK_SECONDS = 10.0
ALERTS = 400
REPEATS = 3
PASSWORD = "bench-web-password"
INSTALL_ID = "bench-web"  # every run's install: so this process knows the prefix of the Redis keys
# main just before the branch 'watch' (188cbb8) was merged: one banner per open alert, the previous grid.
PREVIOUS = "dbdf9ed"
PREVIOUS_LAYOUT = "the previous layout (one banner per open alert, the previous grid), same data, same invocation"
PAGES = {"dashboard": "/dashboard/", "live": "/dashboard/live", "charts": "/dashboard/charts?range=hour",
         "review": "/review/?reason=level_4"}
FIGURES = {
    "viewers_p95": {"about": "10 viewers of the dashboard (the page and its charts, then its live update every "
                             "second) during a full run of the 1,871 real posts × 30 workers (built-in annotator), "
                             "400 open LEVEL_4 alerts, gunicorn as `./run.sh` starts it: p95 of the answer times",
                    "unit": "ms", "goal": "<= 1000", "baseline": PREVIOUS_LAYOUT},
    "viewers_median": {"about": "the same: median answer time", "unit": "ms", "goal": "<= 100",
                       "baseline": PREVIOUS_LAYOUT},
    "viewer_errors": {"about": "the same: requests that failed", "unit": "requests", "goal": "== 0",
                      "baseline": PREVIOUS_LAYOUT},
    "dashboard_page": {"about": "`/dashboard/` afterwards (30 workers, 56,130 outcomes, a day of per-minute metrics, "
                                "400 open alerts), median of 20 over loopback HTTP", "unit": "ms", "goal": "<= 100",
                       "baseline": PREVIOUS_LAYOUT},
    "dashboard_p95": {"about": "the same: p95 of the 20", "unit": "ms", "baseline": PREVIOUS_LAYOUT},
    "dashboard_bytes": {"about": "the same: the page's HTML as served (uncompressed)", "unit": "bytes",
                        "baseline": PREVIOUS_LAYOUT},
    "dashboard_queries": {"about": "the same: database queries of one request", "unit": "queries",
                          "baseline": PREVIOUS_LAYOUT},
    "dashboard_rps": {"about": "the same: 10 viewers asking for `/dashboard/` back to back for 10 s",
                      "unit": "pages/s", "baseline": PREVIOUS_LAYOUT},
    "live": {"about": "`/dashboard/live` afterwards, as viewers get it (the snapshot shared for half a second), "
                      "median of 20", "unit": "ms", "goal": "<= 100", "baseline": PREVIOUS_LAYOUT},
    "live_afresh": {"about": "`/dashboard/live` made afresh for each request (the shared snapshot deleted first)",
                    "unit": "ms", "baseline": PREVIOUS_LAYOUT},
    "live_bytes": {"about": "the live update's JSON as served", "unit": "bytes", "baseline": PREVIOUS_LAYOUT},
    "live_queries": {"about": "the live update made afresh: database queries", "unit": "queries",
                     "baseline": PREVIOUS_LAYOUT},
    "charts": {"about": "`/dashboard/charts` afterwards, median of 20", "unit": "ms", "goal": "<= 100",
               "baseline": PREVIOUS_LAYOUT},
    "review_queue": {"about": "the review queue the alert line links to (`/review/?reason=level_4`), median of 20",
                     "unit": "ms", "baseline": PREVIOUS_LAYOUT},
}

# Migrate, seed, import, a staff user, the metrics history and the open LEVEL_4 alerts, in one process. It runs in
# either layout's code: only models and functions both have.
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
from workers_app.models import Alert, ReviewItem, Sample, Worker, WorkerMetric
from workers_app.monitoring.review_alerts import KIND, alert_level_4_items
ensure_worker_rows()
now = timezone.now().replace(second=0, microsecond=0)
WorkerMetric.objects.bulk_create((WorkerMetric(worker=w, at=now - timedelta(minutes=m), throughput=30 + m % 7,
    malformed_rate=0.01, queue_length=max(0, 1871 - m), latency_p50_ms=20, latency_p95_ms=40, rss=120_000_000)
    for w in Worker.objects.all() for m in range(1, {minutes} + 1)), batch_size=5000)
urgent = Sample.objects.order_by("pk").values_list("pk", flat=True)[:{alerts}]
ReviewItem.objects.bulk_create(ReviewItem(sample_id=pk, reasons=["level_4"], risk=100) for pk in urgent)
alert_level_4_items()
opened = Alert.objects.filter(kind=KIND, resolved_at__isnull=True).count()
assert opened == {alerts}, f"{{opened}} open LEVEL_4 alerts, not {alerts}"
"""

# The queries of one request of each page, in the layout's own code (after a warm-up request each).
QUERIES = """
import json
from django.contrib.auth import get_user_model
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from workers_app.redis_client import get_redis
from workspace.dashboard.snapshot import SHARED_KEY
client = Client(HTTP_HOST="127.0.0.1")
client.force_login(get_user_model().objects.get(username="bench"))
found = {{}}
for name, path in {pages!r}.items():
    client.get(path)
    get_redis().delete(SHARED_KEY)
    with CaptureQueriesContext(connection) as queries:
        status = client.get(path).status_code
    if status != 200:
        raise SystemExit(f"{{path}}: HTTP {{status}}")
    found[name] = len(queries)
print(json.dumps(found))
"""


class Plan:
    """The shape of a run: full, or (--quick) tiny."""

    def __init__(self, quick: bool):
        self.quick = quick
        self.shape = Shape(quick)
        self.viewers = 2 if quick else VIEWERS
        self.requests = 3 if quick else REQUESTS
        self.back_to_back = 2.0 if quick else BACK_TO_BACK_SECONDS
        self.metric_minutes = 60 if quick else 1440
        self.alerts = QUICK_POSTS if quick else ALERTS


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


def timed_get(client: httpx.Client, path: str, times: list[float], errors: list[str]) -> None:
    started = time.perf_counter()
    try:
        status = client.get(path).status_code
        if status != 200:
            errors.append(f"{path}: HTTP {status}")
    except httpx.HTTPError as exc:
        errors.append(f"{path}: {exc.__class__.__name__}")
    times.append((time.perf_counter() - started) * 1000)


def viewer(client: httpx.Client, stop: threading.Event, times: list[float], errors: list[str]) -> None:
    """One open dashboard: the page and its charts, then the live update every second (the charts every minute)."""
    timed_get(client, PAGES["dashboard"], times, errors)
    charts_due = 0.0
    while not stop.is_set():
        started = time.perf_counter()
        if started >= charts_due:
            timed_get(client, PAGES["charts"], times, errors)
            charts_due = started + CHARTS_EVERY_SECONDS
        timed_get(client, PAGES["live"], times, errors)
        stop.wait(max(0.0, POLL_SECONDS - (time.perf_counter() - started)))


def p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))]


def page_times(client: httpx.Client, redis_url: str, requests: int) -> dict[str, dict]:
    """Each page's answer times (median and p95 ms) and size (bytes); the live update twice: as viewers mostly get
    it, and made afresh."""
    import redis

    from workspace.dashboard.snapshot import SHARED_KEY

    shared = redis.Redis.from_url(redis_url)
    found = {}
    for name, path, fresh in (("dashboard", PAGES["dashboard"], False), ("charts", PAGES["charts"], False),
                              ("live", PAGES["live"], False), ("live_afresh", PAGES["live"], True),
                              ("review", PAGES["review"], False)):
        client.get(path).raise_for_status()  # warm: templates and imports
        if fresh and not shared.exists(SHARED_KEY):
            raise RuntimeError(f"no shared snapshot at {SHARED_KEY} right after a request: the key has moved")
        times = []
        for _ in range(requests):
            if fresh:
                shared.delete(SHARED_KEY)
            started = time.perf_counter()
            answer = client.get(path)
            times.append((time.perf_counter() - started) * 1000)
            answer.raise_for_status()
        found[name] = {"median": statistics.median(times), "p95": p95(times), "bytes": len(answer.content)}
    return found


def back_to_back(clients: list[httpx.Client], seconds: float) -> dict:
    """Every client asks for the dashboard again as soon as it has its answer, for ``seconds``: pages per second."""
    times: list[float] = []
    errors: list[str] = []
    deadline = time.perf_counter() + seconds

    def ask(client: httpx.Client) -> None:
        while time.perf_counter() < deadline:
            timed_get(client, PAGES["dashboard"], times, errors)

    started = time.perf_counter()
    threads = [threading.Thread(target=ask, args=(client,), daemon=True) for client in clients]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    if errors:
        raise RuntimeError(f"{len(errors)} of {len(times)} back-to-back requests failed, e.g. {errors[0]}")
    return {"rps": len(times) / elapsed, "median": statistics.median(times), "p95": p95(times)}


def full_run_with_viewers(code: Path, env: dict, db: Database, base: str, plan: Plan) -> dict:
    expected = db.query("SELECT count(*) FROM workers_app_sample")[0][0] * plan.shape.workers
    clients = [logged_in(base) for _ in range(plan.viewers)]
    stop, times, errors = threading.Event(), [], []
    agent = subprocess.Popen([PYTHON, "manage.py", "fleet_agent"], cwd=code, env=env, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
    try:
        time.sleep(plan.shape.settle)  # the agent imports Django and Celery once, before any launch
        threads = [threading.Thread(target=viewer, args=(c, stop, times, errors), daemon=True) for c in clients]
        started = time.perf_counter()
        launch = subprocess.Popen([PYTHON, "manage.py", "workers", "launch", *plan.shape.scope], cwd=code, env=env,
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
        pages = page_times(clients[0], env["REDIS_URL"], plan.requests)
        busy = back_to_back(clients, plan.back_to_back)
    finally:
        stop.set()
        agent.terminate()
        agent.wait(timeout=120)
        for client in clients:
            client.close()
    if not times:
        raise RuntimeError("the viewers made no request during the run")
    open_alerts = db.query("SELECT count(*) FROM workers_app_alert WHERE resolved_at IS NULL")[0][0]
    return {"run_seconds": run_seconds, "median": statistics.median(times), "p95": p95(times),
            "max": max(times), "requests": len(times), "errors": errors, "pages": pages, "back_to_back": busy,
            "open_alerts": open_alerts}


def one_layout(code: Path, postgres: str | None, plan: Plan) -> dict:
    """The whole scenario in the code at ``code``, on a fresh install of its own."""
    data_dir = Path(tempfile.mkdtemp(prefix="bench-web-"))
    redis = start_private(data_dir / "redis", persist=False)
    saved = dict(os.environ)
    try:
        with fresh_database(postgres, data_dir) as url:
            env = {**clean_environment(), "DATA_DIR": str(data_dir), "REDIS_URL": redis.url, "DATABASE_URL": url,
                   "INSTALL_ID": INSTALL_ID, "FLEET_HOST": "bench", **plan.shape.env}
            corpus = corpus_file(QUICK_POSTS if plan.quick else None, data_dir)
            manage(code, env, "shell", "-c", SETUP.format(corpus=str(corpus), password=PASSWORD,
                                                          minutes=plan.metric_minutes, alerts=plan.alerts))
            os.environ.clear()
            os.environ.update(env)
            port = choose_port()
            # As ./run.sh starts it (this checkout's command line), serving the code at ``code``.
            web = subprocess.Popen(web_command(port), cwd=code, env=env, start_new_session=True)
            db = Database(url)
            try:
                wait_for_web(f"http://127.0.0.1:{port}")
                found = full_run_with_viewers(code, env, db, f"http://127.0.0.1:{port}", plan)
            finally:
                web.terminate()
                web.wait(timeout=60)
                db.close()
            queries = manage(code, env, "shell", "-c", QUERIES.format(pages=PAGES)).stdout
            return {**found, "queries": json.loads(queries.strip().splitlines()[-1])}
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
    logging.getLogger("httpx").setLevel(logging.WARNING)  # not a line per request


def previous_code(commit: str, quick: bool):
    """The previous layout's checkout (a context); none for --quick on a clone without that commit."""
    found = subprocess.run(["git", "cat-file", "-e", f"{commit}^{{commit}}"], cwd=ROOT, capture_output=True,
                           check=False).returncode == 0
    if found:
        return checkout(commit)
    if quick:
        print(f"[bench] commit {commit} is absent: --quick measures only this checkout")
        return nullcontext()
    raise SystemExit(f"commit {commit} (the previous layout) is not in this clone: fetch it or give --previous")


def show(label: str, result: dict) -> None:
    print(f"{label}: full run {result['run_seconds']:.1f} s; during it: median {result['median']:.0f} ms, "
          f"p95 {result['p95']:.0f} ms, max {result['max']:.0f} ms, {result['requests']} requests, errors "
          f"{len(result['errors'])}{' e.g. ' + result['errors'][0] if result['errors'] else ''}; "
          f"{result['open_alerts']} open alerts after it", flush=True)
    print("  after it, answer time median/p95, size: " + ", ".join(
        f"{page} {p['median']:.1f}/{p['p95']:.1f} ms, {p['bytes']:,} B" for page, p in result["pages"].items()),
        flush=True)
    busy = result["back_to_back"]
    print(f"  back to back: {busy['rps']:.1f} pages/s (median {busy['median']:.0f} ms, p95 {busy['p95']:.0f} ms); "
          f"queries: {', '.join(f'{page} {n}' for page, n in result['queries'].items())}", flush=True)


def record(results: Results, mine: list[dict], theirs: list[dict], note: str) -> None:
    def add(figure: str, value) -> None:
        results.add(figure, [value(r) for r in mine], baseline=[value(r) for r in theirs] if theirs else None,
                    baseline_note=note if theirs else "")

    add("viewers_p95", lambda r: r["p95"])
    add("viewers_median", lambda r: r["median"])
    add("viewer_errors", lambda r: len(r["errors"]))
    add("dashboard_page", lambda r: r["pages"]["dashboard"]["median"])
    add("dashboard_p95", lambda r: r["pages"]["dashboard"]["p95"])
    add("dashboard_bytes", lambda r: r["pages"]["dashboard"]["bytes"])
    add("dashboard_queries", lambda r: r["queries"]["dashboard"])
    add("dashboard_rps", lambda r: r["back_to_back"]["rps"])
    add("live", lambda r: r["pages"]["live"]["median"])
    add("live_afresh", lambda r: r["pages"]["live_afresh"]["median"])
    add("live_bytes", lambda r: r["pages"]["live"]["bytes"])
    add("live_queries", lambda r: r["queries"]["live"])
    add("charts", lambda r: r["pages"]["charts"]["median"])
    add("review_queue", lambda r: r["pages"]["review"]["median"])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--postgres", help="a PostgreSQL URL whose server may create a database for the runs")
    parser.add_argument("--previous", default=PREVIOUS, help="the previous layout's commit (default: %(default)s)")
    parser.add_argument("--repeats", type=int, default=REPEATS, help="runs of each layout, alternating")
    args = arguments(parser)
    plan = Plan(args.quick)
    results = Results(__file__, FIGURES, quick=args.quick)
    django_for_keys()
    results.database(database_name(args.postgres))
    print(f"{database_name(args.postgres)}, {os.cpu_count()} cores, {plan.viewers} viewers polling "
          f"every {POLL_SECONDS:.0f} s, {plan.alerts} open LEVEL_4 alerts; load before: {os.getloadavg()[0]:.1f}")
    mine, theirs = [], []
    with previous_code(args.previous, args.quick) as previous:
        layouts = [("this checkout", ROOT, mine)]
        if previous is not None:
            layouts.append((f"previous layout ({args.previous})", previous, theirs))
        for repetition in range(1 if args.quick else args.repeats):
            for label, code, found in layouts if repetition % 2 else layouts[::-1]:
                result = one_layout(code, args.postgres, plan)
                found.append(result)
                show(label, result)
    note = f"commit {git('rev-parse', '--short', args.previous)}" if theirs else ""
    record(results, mine, theirs, note)
    results.write()


if __name__ == "__main__":
    main()
