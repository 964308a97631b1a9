"""bench/chaos: the full run of the 1,871 real posts by all 30 workers (built-in annotator), with and without faults.

Faults: a random worker SIGKILLed every 10 s, Redis away for 5 s and back empty at 30 s (clients paused, then every
connection dropped and the data gone: what a restart without persistence looks like to them), Redis wiped at 60 s.
Each run starts in its own process from a fresh DATA_DIR, database and Redis, and ends when every (sample, worker)
is stored and every workbook holds all 1,871 rows. The runs alternate: without faults (the baseline), with faults,
3 times (about 10 minutes).
Run: .venv/bin/python bench/chaos.py [--runs 3] [--quick]
     (--quick: 20 posts, 2 workers, a 0.5 s outage at 1 s and one kill at 2 s, workbooks flushed and lost work
      looked for every second, one run of each;
      one run: --mode plain|chaos, prints JSON)
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

from _setup import (
    QUICK_POSTS,
    Results,
    arguments,
    import_posts,
    in_fresh_process,
    isolated_django,
    log_tail,
    start_agent,
)

RUNS = 3
FAULTS = {"kill_every": 10, "outage_at": 30, "outage_seconds": 5, "wipe_at": 60}
# Quick: a short outage at 1 s and one kill at 2 s (the faults stop after it), no wipe. More kills that close
# together can kill a worker again and again while it boots, until the agent gives up on it.
QUICK_FAULTS = {"kill_every": 2, "outage_at": 1, "outage_seconds": 0.5, "wipe_at": float("inf")}
FIGURES = {
    "with_faults": {"about": "the 1,871 real posts × 30 workers to the end (all stored, all 30 workbooks complete) "
                             "with a random worker SIGKILLed every 10 s, Redis away 5 s and back empty at 30 s, wiped "
                             "at 60 s", "unit": "s", "baseline": "the same run without faults"},
    "faults_cost": {"about": "the same: what the faults cost, each faulty run against the run without faults before "
                             "it", "unit": "s", "goal": "<= 60"},
    "duplicates": {"about": "the same: (sample, annotator, domain) stored more than once after the faulty run",
                   "unit": "outcomes", "goal": "== 0", "baseline": "the same run without faults"},
}


def one_run(chaos: bool, quick: bool) -> dict:
    from django.conf import settings
    from django.db.models import Count

    from tests.chaos import Chaos
    from workers_app.engine.integrity import UnreadableWorkbook, workbook_rows
    from workers_app.fleet.rows import key_of, select_workers
    from workers_app.fleet.services import launch_workers
    from workers_app.models import Outcome, Sample, Worker
    from workers_app.runs.files import workbook_path

    agent_log = settings.DATA_DIR / "agent.log"
    agent = start_agent(agent_log)
    workers = select_workers(1)[:2] if quick else select_workers()
    expected = Sample.objects.count()
    started = time.perf_counter()
    launch_workers(workers, actor="bench", wait=False)
    faults = Chaos(settings.REDIS_URL, lambda: list(Worker.objects.values_list("pid", flat=True)),
                   **(QUICK_FAULTS if quick else FAULTS))
    if chaos:
        faults.start()

    def complete() -> bool:
        try:
            return all(workbook_rows(workbook_path(key_of(w))) == expected for w in workers)
        except (UnreadableWorkbook, FileNotFoundError):
            return False

    try:
        while not (Outcome.objects.count() == expected * len(workers) and complete()):
            if agent.poll() is not None:
                raise RuntimeError(f"the fleet agent exited with {agent.returncode}:\n{log_tail(agent_log)}")
            if time.perf_counter() - started > 900:
                raise TimeoutError("the run did not finish within 15 minutes")
            if quick and faults.kills:
                faults.stop.set()
            time.sleep(0.2 if quick else 1)
        elapsed = time.perf_counter() - started
    finally:
        faults.stop.set()
        Worker.objects.update(desired_state=Worker.Desired.STOPPED)
        agent.terminate()
        agent.wait()
    duplicates = Outcome.objects.values("sample_id", "annotator_id", "domain_id").annotate(n=Count("id")) \
        .filter(n__gt=1).count()
    return {"seconds": round(elapsed, 1), "outcomes": Outcome.objects.count(), "duplicates": duplicates,
            "kills": faults.kills, "events": faults.events}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=RUNS)
    parser.add_argument("--mode", choices=("plain", "chaos"))
    args = arguments(parser)
    if args.mode:
        # Quick: the periodic work (flush, the look for lost work) every second, not every 10 s.
        isolated_django(**({"FLUSH_EVERY_SECONDS": "1", "LOST_WORK_CHECK_SECONDS": "1"} if args.quick else {}))
        import_posts(QUICK_POSTS if args.quick else None)
        print(json.dumps(one_run(args.mode == "chaos", args.quick)))
        return
    results = Results(__file__, FIGURES, quick=args.quick)
    plain, chaos = [], []
    for _ in range(1 if args.quick else args.runs):
        plain.append(in_fresh_process(__file__, "--mode", "plain", quick=args.quick))
        chaos.append(in_fresh_process(__file__, "--mode", "chaos", quick=args.quick))
        print(f"no faults: {plain[-1]['seconds']} s, {plain[-1]['outcomes']} outcomes, {plain[-1]['duplicates']} "
              f"duplicates; with faults ({chaos[-1]['kills']} workers killed; {'; '.join(chaos[-1]['events'])}): "
              f"{chaos[-1]['seconds']} s, {chaos[-1]['outcomes']} outcomes, {chaos[-1]['duplicates']} duplicates",
              flush=True)
    costs = [c["seconds"] - p["seconds"] for p, c in zip(plain, chaos, strict=True)]
    print(f"the faults cost a median {statistics.median(costs):+.1f} s (runs {', '.join(f'{c:+.1f}' for c in costs)})")
    results.add("with_faults", [c["seconds"] for c in chaos], baseline=[p["seconds"] for p in plain],
                note=f"{statistics.median(c['kills'] for c in chaos):.0f} workers killed (median)")
    results.add("faults_cost", costs)
    results.add("duplicates", [c["duplicates"] for c in chaos], baseline=[p["duplicates"] for p in plain])
    results.write()


if __name__ == "__main__":
    main()
