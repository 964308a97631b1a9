"""bench/chaos: the full run of the 1,871 real posts by all 30 workers (built-in annotator), with and without faults.

Faults: a random worker SIGKILLed every 10 s, Redis away for 5 s and back empty at 30 s (clients paused, then every
connection dropped and the data gone: what a restart without persistence looks like to them), Redis wiped at 60 s.
Each run starts from a fresh DATA_DIR, database and Redis, and ends when every (sample, worker) is stored and every
workbook holds all 1,871 rows. Run: .venv/bin/python bench/chaos.py   (about 6 minutes)
"""

from __future__ import annotations

import json
import subprocess
import sys
import time

from _setup import ROOT, import_posts, isolated_django, worker_env


def one_run(chaos: bool) -> dict:
    from django.conf import settings
    from django.db.models import Count

    from tests.chaos import Chaos
    from workers_app.engine.integrity import UnreadableWorkbook, workbook_rows
    from workers_app.fleet.rows import key_of, select_workers
    from workers_app.fleet.services import launch_workers
    from workers_app.models import Outcome, Sample, Worker
    from workers_app.runs.files import workbook_path

    agent = subprocess.Popen([sys.executable, "manage.py", "fleet_agent"], cwd=ROOT, env=worker_env(),
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    workers = select_workers()
    expected = Sample.objects.count()
    time.sleep(2)  # the agent imports Django and Celery once, before any launch
    started = time.perf_counter()
    launch_workers(workers, actor="bench", wait=False)
    faults = Chaos(settings.REDIS_URL, lambda: list(Worker.objects.values_list("pid", flat=True)), kill_every=10,
                   outage_at=30, outage_seconds=5, wipe_at=60)
    if chaos:
        faults.start()

    def complete() -> bool:
        try:
            return all(workbook_rows(workbook_path(key_of(w))) == expected for w in workers)
        except (UnreadableWorkbook, FileNotFoundError):
            return False

    while not (Outcome.objects.count() == expected * len(workers) and complete()):
        assert time.perf_counter() - started < 900, "the run did not finish within 15 minutes"
        time.sleep(1)
    elapsed = time.perf_counter() - started
    faults.stop.set()
    agent.terminate()
    agent.wait()
    duplicates = Outcome.objects.values("sample_id", "annotator_id", "domain_id").annotate(n=Count("id")) \
        .filter(n__gt=1).count()
    return {"seconds": round(elapsed, 1), "outcomes": Outcome.objects.count(), "duplicates": duplicates,
            "kills": faults.kills, "events": faults.events}


if __name__ == "__main__":
    if len(sys.argv) == 2:
        isolated_django()
        import_posts()
        print(json.dumps(one_run(sys.argv[1] == "chaos")))
        sys.exit(0)
    results = {}
    for mode in ("plain", "chaos"):
        output = subprocess.run([sys.executable, __file__, mode], cwd=ROOT, capture_output=True, text=True,
                                check=True).stdout
        results[mode] = json.loads(output.strip().splitlines()[-1])
    plain, chaos = results["plain"], results["chaos"]
    print(f"no faults: {plain['seconds']} s, {plain['outcomes']} outcomes, {plain['duplicates']} duplicates")
    print(f"with faults ({chaos['kills']} workers killed; {'; '.join(chaos['events'])}): {chaos['seconds']} s, "
          f"{chaos['outcomes']} outcomes, {chaos['duplicates']} duplicates")
    print(f"the faulty run took {chaos['seconds'] - plain['seconds']:+.1f} s; goal: within 60 s, nothing lost or "
          "duplicated")
