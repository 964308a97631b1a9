"""bench/health: one health sweep over 30 live, idle workers (launched through the agent, each with 200 real posts
done), median of 20 sweeps, next to a naive per-worker loop over the same workers that asks each over Celery
control (ping + active tasks), median of 3, measured in the same run.
Run: .venv/bin/python bench/health.py [--quick]   (--quick: 20 posts, 2 live workers, 3 sweeps and one naive loop)
"""

from __future__ import annotations

import statistics
import time

from _setup import QUICK_POSTS, Results, arguments, import_posts, isolated_django, start_agent

POSTS = 200
SWEEPS = 20
NAIVE = 3
FIGURES = {
    "sweep": {"about": "one health sweep over 30 live, idle workers", "unit": "ms", "goal": "<= 100",
              "baseline": "naive per-worker loop over the same workers: control ping + inspect active"},
}


def naive_sweep(workers) -> float:
    from annotation_site.celery import app

    started = time.perf_counter()
    for worker in workers:
        app.control.ping(destination=[worker.node_name], timeout=1.0)
        app.control.inspect(destination=[worker.node_name], timeout=1.0).active()
    return time.perf_counter() - started


def main() -> None:
    args = arguments()
    # --quick: the workbooks are written within 2 s, so that every check can pass after a short wait.
    data_dir = isolated_django(HEARTBEAT_SECONDS="2", **({"FLUSH_EVERY_SECONDS": "2"} if args.quick else {}))
    from workers_app.fleet.rows import select_workers
    from workers_app.fleet.services import launch_workers, run_bulk, stop_worker
    from workers_app.models import Outcome
    from workers_app.monitoring.sweep import health_sweep

    results = Results(__file__, FIGURES, quick=args.quick)
    posts = import_posts(QUICK_POSTS if args.quick else POSTS)
    sweeps, naive_runs = (3, 1) if args.quick else (SWEEPS, NAIVE)
    agent = start_agent(data_dir / "agent.log")
    try:
        workers = select_workers()[:2] if args.quick else select_workers()
        launch_workers(workers, actor="bench")
        # Measure the sweep itself: let the fleet finish its annotations first (2 cores are shared).
        deadline = time.monotonic() + 600
        while Outcome.objects.count() < posts * len(workers):
            if time.monotonic() > deadline:
                raise TimeoutError(f"{Outcome.objects.count()} of {posts * len(workers)} outcomes after 600 s")
            time.sleep(0.5)
        time.sleep(4 if args.quick else 12)  # every worker has beaten and flushed since
        timings = []
        for _ in range(sweeps):
            report = health_sweep()
            assert not report.skipped and not report.restarted, report.restarted
            timings.append(report.seconds)
        live = {w.pk for w in workers}
        unhealthy = [h.worker.name for h in report.health if h.worker.pk in live and not h.healthy]
        naive = [naive_sweep(workers) for _ in range(naive_runs)]
        run_bulk(stop_worker, workers, actor="bench")
    finally:
        agent.terminate()
        agent.wait()
    print(f"health sweep over {len(workers)} live, idle workers ({posts} outcomes each): median "
          f"{statistics.median(timings) * 1000:.1f} ms (min {min(timings) * 1000:.1f}, max {max(timings) * 1000:.1f}; "
          f"{sweeps} sweeps); unhealthy: {unhealthy}")
    print(f"naive per-worker loop with control ping + inspect: median {statistics.median(naive):.2f} s "
          f"({naive_runs} runs)")
    results.add("sweep", [t * 1000 for t in timings], baseline=[t * 1000 for t in naive],
                note=f"unhealthy at the end: {', '.join(unhealthy)}" if unhealthy else "")
    results.write()


if __name__ == "__main__":
    main()
