"""bench/fleet: the 30-worker fleet on this machine, launched 5 times (medians).

Each round, on the same DATA_DIR, Redis and database, with one fleet agent that stays up:
1. launch all 30 through the services -> every node answers ping and is observed running;
2. total PSS of the 30 worker processes;
3. `pause --all` and `resume --all` with every worker confirming;
4. restart of one worker until it consumes again;
5. stop all, and wait until every process has exited;
then the baseline of the round: 30 plain `celery worker` subprocesses started at once until every node answers
ping, and their total PSS. The rounds alternate the two, so both see the same machine.
Run: .venv/bin/python bench/fleet.py [--rounds 5] [--quick]   (--quick: 2 workers, one round)
"""

from __future__ import annotations

import argparse
import statistics
import time

import psutil
from _setup import (
    Results,
    arguments,
    isolated_django,
    start_agent,
    start_celery_workers,
    stop_processes,
    wait_for_pings,
)

isolated_django()

from django.conf import settings

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

ROUNDS = 5
PLAIN_START_TIMEOUT = 600  # s
FIGURES = {
    "launch": {"about": "launch all 30 workers through the agent until every one answers ping and runs",
               "unit": "s", "goal": "<= 5", "baseline": "30 plain `celery worker` subprocesses started at once"},
    "pss": {"about": "total PSS of the 30 worker processes", "unit": "GB", "goal": "<= 1.2",
            "baseline": "30 plain `celery worker` subprocesses"},
    "pause_all": {"about": "`pause --all`, every worker confirming", "unit": "s", "goal": "<= 0.3"},
    "resume_all": {"about": "`resume --all`, every worker confirming", "unit": "s", "goal": "<= 0.3"},
    "restart_one": {"about": "restart one worker until it consumes again", "unit": "s", "goal": "<= 2"},
}


def total_pss(pids: list[int]) -> float:
    """In GB (10^9 bytes)."""
    return sum(psutil.Process(pid).memory_full_info().pss for pid in pids) / 1e9


def plain_subprocesses(workers: list[Worker]) -> tuple[float, float]:
    started = time.perf_counter()
    # Their start is the figure: on a loaded machine 30 at once took 80-120 s and more, so the wait is long.
    processes = start_celery_workers([f"plain.{worker.name}" for worker in workers], timeout=PLAIN_START_TIMEOUT)
    try:
        elapsed = time.perf_counter() - started
        time.sleep(2)
        pss = total_pss([p.pid for p in processes])
    finally:
        stop_processes(processes)
    return elapsed, pss


def fleet_launch(workers: list[Worker]) -> tuple[float, float]:
    started = time.perf_counter()
    results = launch_workers(workers, actor="bench", wait=False)
    assert all(r.ok for r in results), results
    wait_for_pings([w.node_name for w in workers])
    names = [w.name for w in workers]
    while sum(w.observed_state == "running" for w in Worker.objects.filter(pk__in=[w.pk for w in workers])) < len(
            workers):
        if time.perf_counter() - started > 120:
            raise TimeoutError(f"not all of {names} running after 120 s")
        time.sleep(0.02)
    elapsed = time.perf_counter() - started
    time.sleep(2)
    pids = list(Worker.objects.filter(pk__in=[w.pk for w in workers]).values_list("pid", flat=True))
    return elapsed, total_pss(pids)


def fresh(workers: list[Worker]) -> list[Worker]:
    """The rows as they are now: an operation reads each worker's observed state from the row it is given."""
    return list(Worker.objects.select_related("annotator", "domain").filter(pk__in=[w.pk for w in workers]))


def timed(operation, workers: list[Worker], confirmed: str) -> float:
    """Seconds for ``operation`` on the workers; every one must answer with ``confirmed``."""
    workers = fresh(workers)
    started = time.perf_counter()
    results = operation(workers, actor="bench")
    elapsed = time.perf_counter() - started
    assert all(r.ok and r.message == confirmed for r in results), [r for r in results if r.message != confirmed]
    return elapsed


def stop_all(workers: list[Worker]) -> None:
    """Stop every worker and wait until its process is gone, so that the next round starts on a quiet machine."""
    pids = [pid for pid in Worker.objects.filter(pk__in=[w.pk for w in workers]).values_list("pid", flat=True) if pid]
    results = run_bulk(stop_worker, workers, actor="bench")
    assert all(r.ok for r in results), [r for r in results if not r.ok]
    _, alive = psutil.wait_procs([p for p in map(_process, pids) if p], timeout=60)
    if alive:
        raise RuntimeError(f"{len(alive)} worker processes still alive 60 s after stopping")


def _process(pid: int) -> psutil.Process | None:
    try:
        return psutil.Process(pid)
    except psutil.NoSuchProcess:
        return None


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=ROUNDS)
    args = arguments(parser)
    results = Results(__file__, FIGURES, quick=args.quick)
    rounds = 1 if args.quick else args.rounds
    agent = start_agent(settings.DATA_DIR / "agent.log")
    launches, pss, pauses, resumes, restarts, plain, plain_pss = [], [], [], [], [], [], []
    try:
        workers = select_workers()[:2] if args.quick else select_workers()
        one = workers[:1]
        for round_number in range(1, rounds + 1):
            launch, memory = fleet_launch(workers)
            launches.append(launch)
            pss.append(memory)
            pauses.append(timed(pause_workers, workers, "paused"))
            resumes.append(timed(resume_workers, workers, "consuming"))
            restarts.append(timed(lambda ws, actor: [restart_worker(w, actor=actor) for w in ws], one, "restarted"))
            stop_all(workers)
            elapsed, memory = plain_subprocesses(workers)
            plain.append(elapsed)
            plain_pss.append(memory)
            print(f"round {round_number}: launch {launch:.2f} s (plain {elapsed:.2f} s), PSS {pss[-1]:.2f} GB "
                  f"(plain {memory:.2f} GB), pause {pauses[-1]:.3f} s, resume {resumes[-1]:.3f} s, restart "
                  f"{restarts[-1]:.2f} s", flush=True)
    finally:
        Worker.objects.update(desired_state=Worker.Desired.STOPPED)
        agent.terminate()
        agent.wait()

    def runs(values: list[float], digits: int = 2) -> str:
        return f"median {statistics.median(values):.{digits}f} (runs {', '.join(f'{v:.{digits}f}' for v in values)})"

    print(f"{len(workers)} workers, {rounds} rounds")
    print(f"launch -> all answering ping and running: {runs(launches)} s; plain subprocesses at once: {runs(plain)} s")
    print(f"total PSS of the workers: {runs(pss)} GB; plain subprocesses: {runs(plain_pss)} GB")
    print(f"pause --all: {runs(pauses, 3)} s; resume --all: {runs(resumes, 3)} s; restart one: {runs(restarts)} s")
    results.add("launch", launches, baseline=plain)
    results.add("pss", pss, baseline=plain_pss)
    results.add("pause_all", pauses)
    results.add("resume_all", resumes)
    results.add("restart_one", restarts)
    results.write()


if __name__ == "__main__":
    main()
