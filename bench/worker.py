"""bench/worker: one Celery worker on the 1,871 real posts with the built-in annotator at zero latency.

Measures annotations per second end to end: queued -> stored -> in the workbook, median of 3 runs (each a
different domain, so each starts with nothing stored). For reference, the same work done in-process by a plain loop
over annotate_sample (no broker, no worker) is measured in the same run, 3 times.
Run: .venv/bin/python bench/worker.py [--quick]   (--quick: 20 posts, one run of each)
"""

from __future__ import annotations

import os
import statistics
import time

from _setup import QUICK_POSTS, Results, arguments, import_posts, isolated_django, start_celery_workers, stop_processes

isolated_django(FLUSH_EVERY_ROWS="500", FLUSH_EVERY_SECONDS="2")


from workers_app.engine.annotate import annotate_sample
from workers_app.engine.flush import flush_workbook
from workers_app.engine.integrity import workbook_rows
from workers_app.engine.keys import WorkerKey
from workers_app.engine.queues import populate_queues
from workers_app.models import Outcome, Sample
from workers_app.runs.files import workbook_path

RUNS = 3
DOMAINS = ("urgency", "intensity", "modality")
FIGURES = {
    "rate": {"about": "one worker (4 threads), the 1,871 real posts, built-in annotator at zero latency, queued → "
                      "stored → in the workbook", "unit": "annotations/s", "goal": ">= 300",
             "baseline": "in-process loop over annotate_sample, no Celery"},
}


def stored(key: WorkerKey) -> int:
    return Outcome.objects.filter(annotator__number=key.annotator, domain__slug=key.domain).count()


def in_process(key: WorkerKey) -> float:
    started = time.perf_counter()
    for sample_id in Sample.objects.values_list("pk", flat=True):
        annotate_sample(sample_id, key, worker="bench")
    flush_workbook(key)
    return time.perf_counter() - started


def through_worker(key: WorkerKey, total: int) -> tuple[float, float]:
    """Seconds from the first message queued to the last row in the workbook; and the queueing time."""
    workers = start_celery_workers([key.queue], threads=int(os.environ.get("BENCH_THREADS", "4")))
    try:
        started = time.perf_counter()
        populate_queues(key.annotator, key.domain)
        queued = time.perf_counter() - started
        while stored(key) < total or not workbook_path(key).exists() or workbook_rows(workbook_path(key)) < total:
            if time.perf_counter() - started > 600:
                raise TimeoutError(f"{stored(key)} of {total} stored after 600 s")
            time.sleep(0.05)
        elapsed = time.perf_counter() - started
    finally:
        stop_processes(workers)
    return elapsed, queued


def main() -> None:
    args = arguments()
    results = Results(__file__, FIGURES, quick=args.quick)
    total = import_posts(QUICK_POSTS if args.quick else None)
    runs = 1 if args.quick else RUNS
    loop, celery, queueing = [], [], []
    for run in range(runs):
        loop.append(in_process(WorkerKey(1, DOMAINS[run])))
        elapsed, queued = through_worker(WorkerKey(2, DOMAINS[run]), total)
        celery.append(elapsed)
        queueing.append(queued)
    print(f"posts: {total}; {runs} runs each; built-in annotator, zero latency; SQLite; 4 worker threads")
    print(f"celery worker, queued -> stored -> in workbook: median {statistics.median(celery):.2f} s "
          f"= {total / statistics.median(celery):.0f} annotations/s (runs: {', '.join(f'{t:.2f}' for t in celery)})")
    print(f"  of which queueing the {total} samples: median {statistics.median(queueing):.2f} s")
    print(f"reference, in-process loop without Celery: median {statistics.median(loop):.2f} s "
          f"= {total / statistics.median(loop):.0f} annotations/s")
    results.add("rate", [total / t for t in celery], baseline=[total / t for t in loop])
    results.write()


if __name__ == "__main__":
    main()
