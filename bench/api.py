"""bench/api: server time of GET /api/v1/workers (status of 30 workers) and of /metrics with 56,130 outcomes stored
(the 1,871 posts of mh_posts_1871.xlsx x 30 workers), median of 20 requests each through Django's full stack
(middleware, authentication, throttle, view, rendering) in this process.
Run: .venv/bin/python bench/api.py
"""

from __future__ import annotations

import random
import statistics
import time
from datetime import timedelta

from _setup import import_posts, isolated_django

isolated_django(METRICS_TOKEN="bench-scrape-token")

from django.contrib.auth import get_user_model
from django.test import Client
from django.utils import timezone

from api.tokens import create_token
from workers_app.engine.queues import sync_checkpoints
from workers_app.fleet.rows import select_workers
from workers_app.models import Outcome, Sample, Worker

REQUESTS = 20


def store_outcomes() -> int:
    """One outcome per sample and worker, written in bulk as a finished run would leave them."""
    rng = random.Random(7)
    samples = list(Sample.objects.values_list("pk", flat=True))
    now = timezone.now()
    for worker in select_workers():
        Outcome.objects.bulk_create(
            [Outcome(sample_id=pk, annotator=worker.annotator, domain=worker.domain,
                     status="ok" if rng.random() > 0.03 else "malformed", labels=["LEVEL_1"], model="bench",
                     prompt_version=1, latency_ms=rng.randint(50, 8000), prompt_tokens=120, completion_tokens=10,
                     started_at=now, created_at=now) for pk in samples], batch_size=2000)
    return Outcome.objects.count()


def median_ms(client: Client, path: str) -> tuple[float, int]:
    client.get(path)  # warm: imports, connection, caches
    times = []
    for _ in range(REQUESTS):
        started = time.perf_counter()
        response = client.get(path)
        times.append(time.perf_counter() - started)
        assert response.status_code == 200, response.content[:300]
    return statistics.median(times) * 1000, len(response.content)


def main() -> None:
    posts = import_posts()
    outcomes = store_outcomes()
    sync_checkpoints()
    Worker.objects.update(desired_state="running", observed_state="running")
    owner = get_user_model().objects.create_superuser("bench", password="bench-password-1")
    secret = create_token(owner, name="bench", expires_at=timezone.now() + timedelta(days=1), actor=owner).secret
    client = Client(HTTP_AUTHORIZATION=f"Bearer {secret}", HTTP_HOST="127.0.0.1")
    status_ms, status_bytes = median_ms(client, "/api/v1/workers")
    scraper = Client(HTTP_AUTHORIZATION="Bearer bench-scrape-token", HTTP_HOST="127.0.0.1")
    metrics_ms, metrics_bytes = median_ms(scraper, "/metrics")
    print(f"{posts} posts, {outcomes} outcomes stored, {Worker.objects.count()} workers (SQLite)")
    print(f"GET /api/v1/workers: median {status_ms:.1f} ms ({status_bytes} bytes; {REQUESTS} requests); goal <= 50 ms")
    print(f"GET /metrics:        median {metrics_ms:.1f} ms ({metrics_bytes} bytes; {REQUESTS} requests); goal <= 100 ms")


if __name__ == "__main__":
    main()
