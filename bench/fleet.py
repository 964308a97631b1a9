"""bench/fleet: the 30-worker fleet on this machine.

1. launch all 30 through the services -> every node answers ping (and consumes), next to 30 plain
   `celery worker` subprocesses started at once, measured in the same run;
2. total PSS of the 30 worker processes, for both;
3. `pause --all` and `resume --all` with every worker confirming;
4. restart of one worker until it consumes again.
Run: .venv/bin/python bench/fleet.py
"""

from __future__ import annotations

import socket
import statistics
import subprocess
import sys
import time

import psutil
from _setup import ROOT, isolated_django, worker_env

isolated_django()

from annotation_site.celery import app
from workers_app.fleet.rows import select_workers
from workers_app.fleet.services import (
    launch_workers,
    pause_workers,
    restart_worker,
    resume_workers,
    run_bulk,
    stop_worker,
)
from workers_app.models import Worker

REPEATS = 3


def wait_for_pings(nodes: list[str], timeout: float = 120) -> float:
    started = time.perf_counter()
    missing = set(nodes)
    while missing and time.perf_counter() - started < timeout:
        for reply in app.control.ping(destination=list(missing), timeout=0.2) or []:
            missing -= set(reply)
    if missing:
        raise TimeoutError(f"{len(missing)} nodes never answered")
    return time.perf_counter() - started


def total_pss(pids: list[int]) -> float:
    return sum(psutil.Process(pid).memory_full_info().pss for pid in pids) / 2**30


def plain_subprocesses() -> tuple[float, float]:
    host = socket.gethostname()
    started = time.perf_counter()
    nodes, processes = [], []
    for worker in select_workers():
        node = f"plain_{worker.name}@{host}"
        nodes.append(node)
        processes.append(subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "annotation_site", "worker", "-Q", f"plain.{worker.name}", "-n",
             node, "-P", "threads", "-c", "4", "--without-mingle", "--without-gossip", "-l", "ERROR"],
            cwd=ROOT, env=worker_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
    wait_for_pings(nodes)
    elapsed = time.perf_counter() - started
    time.sleep(2)
    pss = total_pss([p.pid for p in processes])
    for process in processes:
        process.terminate()
    for process in processes:
        process.wait()
    return elapsed, pss


def fleet_launch(workers: list[Worker]) -> tuple[float, float]:
    started = time.perf_counter()
    results = launch_workers(workers, actor="bench", wait=False)
    assert all(r.ok for r in results), results
    wait_for_pings([w.node_name for w in workers])
    while Worker.objects.filter(observed_state="running").count() < len(workers):
        time.sleep(0.02)
    elapsed = time.perf_counter() - started
    time.sleep(2)
    pids = list(Worker.objects.values_list("pid", flat=True))
    return elapsed, total_pss(pids)


def timed(operation, workers: list[Worker]) -> float:
    started = time.perf_counter()
    results = operation(workers, actor="bench")
    elapsed = time.perf_counter() - started
    assert all(r.ok for r in results), [r for r in results if not r.ok]
    return elapsed


def main() -> None:
    agent = subprocess.Popen([sys.executable, "manage.py", "fleet_agent"], cwd=ROOT, env=worker_env(),
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        workers = select_workers()
        time.sleep(2)  # the agent imports Django and Celery once, before any launch
        launch, fleet_pss = fleet_launch(workers)
        pauses, resumes = [], []
        for _ in range(REPEATS):
            pauses.append(timed(pause_workers, select_workers()))
            resumes.append(timed(resume_workers, select_workers()))
        restarts = [timed(lambda ws, actor: [restart_worker(w, actor=actor) for w in ws], select_workers(1, "urgency"))
                    for _ in range(REPEATS)]
        run_bulk(stop_worker, select_workers(), actor="bench")
    finally:
        agent.terminate()
        agent.wait()
    plain, plain_pss = plain_subprocesses()
    print(f"launch all 30 -> all answering ping and running: {launch:.2f} s "
          f"(30 plain `celery worker` subprocesses at once: {plain:.2f} s)")
    print(f"fleet memory, total PSS of the 30 workers: {fleet_pss:.2f} GiB (plain subprocesses: {plain_pss:.2f} GiB)")
    print(f"pause --all, every worker confirming: median {statistics.median(pauses):.3f} s "
          f"(runs {', '.join(f'{t:.3f}' for t in pauses)})")
    print(f"resume --all, every worker confirming: median {statistics.median(resumes):.3f} s "
          f"(runs {', '.join(f'{t:.3f}' for t in resumes)})")
    print(f"restart one worker until it consumes again: median {statistics.median(restarts):.2f} s "
          f"(runs {', '.join(f'{t:.2f}' for t in restarts)})")
    print("goals: launch <= 5 s, PSS <= 1.2 GB, pause/resume --all <= 0.3 s each, restart <= 2 s")


if __name__ == "__main__":
    main()
