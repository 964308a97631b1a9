"""bench/health: one health sweep over 30 live workers (launched through the agent), median of 20 sweeps,
next to a naive per-worker loop that asks each worker over Celery control (ping + active tasks), measured
in the same run.
Run: .venv/bin/python bench/health.py
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time

from _setup import ROOT, import_posts, isolated_django, worker_env

isolated_django(HEARTBEAT_SECONDS="2")

from annotation_site.celery import app
from workers_app.fleet.rows import select_workers
from workers_app.fleet.services import launch_workers, run_bulk, stop_worker
from workers_app.models import Outcome, Worker
from workers_app.monitoring.sweep import health_sweep

SWEEPS = 20


def naive_sweep(workers: list[Worker]) -> float:
    started = time.perf_counter()
    for worker in workers:
        app.control.ping(destination=[worker.node_name], timeout=1.0)
        app.control.inspect(destination=[worker.node_name], timeout=1.0).active()
    return time.perf_counter() - started


def main() -> None:
    import_posts(200)
    agent = subprocess.Popen([sys.executable, "manage.py", "fleet_agent"], cwd=ROOT,
                             env=worker_env(), stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
    try:
        workers = select_workers()
        launch_workers(workers, actor="bench")
        # Measure the sweep itself: let the fleet finish its 6,000 annotations first (2 cores are shared).
        while Outcome.objects.count() < 200 * len(workers):
            time.sleep(0.5)
        time.sleep(12)  # every worker has beaten and flushed since
        sweeps = []
        for _ in range(SWEEPS):
            report = health_sweep()
            assert not report.skipped and not report.restarted, report.restarted
            sweeps.append(report.seconds)
        unhealthy = [h.worker.name for h in report.health if not h.healthy]
        naive = [naive_sweep(select_workers()) for _ in range(3)]
        run_bulk(stop_worker, select_workers(), actor="bench")
    finally:
        agent.terminate()
        agent.wait()
    print(f"health sweep over {len(workers)} live, idle workers (200 outcomes each): median {statistics.median(sweeps) * 1000:.1f} ms "
          f"(min {min(sweeps) * 1000:.1f}, max {max(sweeps) * 1000:.1f}; {SWEEPS} sweeps); unhealthy: {unhealthy}")
    print(f"naive per-worker loop with control ping + inspect: median {statistics.median(naive):.2f} s (3 runs)")
    print("goal: <= 0.1 s")


if __name__ == "__main__":
    main()
