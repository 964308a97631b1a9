"""bench/api: server time of GET /api/v1/workers (status of 30 workers) and of /metrics with 56,130 outcomes stored
(the 1,871 posts of mh_posts_1871.xlsx x 30 workers), median of 20 requests each through Django's full stack
(middleware, authentication, throttle, view, rendering) in this process.
Run: .venv/bin/python bench/api.py [--quick]   (--quick: 20 posts, 3 requests each)
"""

from __future__ import annotations

import random
import time
from datetime import timedelta

from _setup import QUICK_POSTS, Results, arguments, import_posts, isolated_django

isolated_django(METRICS_TOKEN="bench-scrape-token")

from django.contrib.auth import get_user_model
from django.test import Client
from django.utils import timezone

from api.tokens import create_token
from workers_app.engine.queues import sync_checkpoints
from workers_app.fleet.rows import select_workers
from workers_app.models import Outcome, Sample, Worker
from workers_app.runs.current import current_run

REQUESTS = 20
FIGURES = {
    "workers_status": {"about": "`GET /api/v1/workers` (status of 30 workers) with the 1,871 real posts × 30 workers "
                                "stored, in-process through the whole Django stack", "unit": "ms", "goal": "<= 50"},
    "metrics": {"about": "`GET /metrics` (Prometheus scrape), the same store", "unit": "ms", "goal": "<= 100"},
}


def store_outcomes() -> int:
    """One outcome per sample and worker, written in bulk as a finished run would leave them."""
    rng = random.Random(7)
    samples = list(Sample.objects.values_list("pk", flat=True))
    now, run = timezone.now(), current_run()
    for worker in select_workers():
        Outcome.objects.bulk_create(
            [Outcome(run=run, sample_id=pk, annotator=worker.annotator, domain=worker.domain,
                     status="ok" if rng.random() > 0.03 else "malformed", labels=["LEVEL_1"], model="bench",
                     prompt_version=1, latency_ms=rng.randint(50, 8000), prompt_tokens=120, completion_tokens=10,
                     started_at=now, created_at=now) for pk in samples], batch_size=2000)
    return Outcome.objects.count()


def timings_ms(client: Client, path: str, requests: int) -> tuple[list[float], int]:
    client.get(path)  # warm: imports, connection, caches
    times = []
    for _ in range(requests):
        started = time.perf_counter()
        response = client.get(path)
        times.append((time.perf_counter() - started) * 1000)
        assert response.status_code == 200, response.content[:300]
    return times, len(response.content)


def main() -> None:
    args = arguments()
    results = Results(__file__, FIGURES, quick=args.quick)
    requests = 3 if args.quick else REQUESTS
    posts = import_posts(QUICK_POSTS if args.quick else None)
    outcomes = store_outcomes()
    sync_checkpoints()
    Worker.objects.update(desired_state="running", observed_state="running")
    owner = get_user_model().objects.create_superuser("bench", password="bench-password-1")
    secret = create_token(owner, name="bench", expires_at=timezone.now() + timedelta(days=1), actor=owner).secret
    client = Client(HTTP_AUTHORIZATION=f"Bearer {secret}", HTTP_HOST="127.0.0.1")
    status, status_bytes = timings_ms(client, "/api/v1/workers", requests)
    scraper = Client(HTTP_AUTHORIZATION="Bearer bench-scrape-token", HTTP_HOST="127.0.0.1")
    metrics, metrics_bytes = timings_ms(scraper, "/metrics", requests)
    print(f"{posts} posts, {outcomes} outcomes stored, {Worker.objects.count()} workers (SQLite)")
    status_figure = results.add("workers_status", status)
    metrics_figure = results.add("metrics", metrics)
    print(f"GET /api/v1/workers: median {status_figure['median']:.1f} ms ({status_bytes} bytes; {requests} requests)")
    print(f"GET /metrics:        median {metrics_figure['median']:.1f} ms ({metrics_bytes} bytes; {requests} requests)")
    results.write()


if __name__ == "__main__":
    main()
