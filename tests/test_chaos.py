"""A short chaos run: workers SIGKILLed every few seconds, Redis away and back empty once, wiped once. Every
(sample, worker) is stored exactly once and every workbook holds each sample once. (bench/chaos.py is the full run
on the 1,871 real posts.)"""

from __future__ import annotations

import time

import openpyxl
import psutil
import pytest
from django.conf import settings
from django.db.models import Count

from tests.chaos import Chaos
from tests.helpers import make_samples, wait_until
from tests.worker_processes import assert_all_ok, forget_broker_connections
from workers_app.engine.flush import flush_workbook
from workers_app.engine.queues import queue_length, unacked_tags
from workers_app.fleet.agent import MAX_QUICK_FAILURES, QUICK_FAILURE_SECONDS
from workers_app.fleet.rows import key_of, select_workers
from workers_app.fleet.services import launch_workers
from workers_app.models import Annotator, Outcome, Sample, Worker
from workers_app.redis_client import get_redis
from workers_app.runs.files import workbook_path

pytestmark = pytest.mark.django_db(transaction=True)
SAMPLES = 300


@pytest.fixture(autouse=True)
def fresh_broker_connections():
    yield
    forget_broker_connections()  # the chaos killed every client of the suite's Redis, this process's too


def test_a_run_under_kills_a_redis_restart_and_a_wipe_stores_everything_exactly_once(agent):
    # 0.2 s a sample, 20 samples a message, 4 threads: about 15 s of work per worker, so every fault lands mid-run.
    Annotator.objects.update(builtin_latency_ms=200)
    rows = [w for w in select_workers() if w.annotator.number <= 2 and w.domain.slug in ("urgency", "intensity",
                                                                                          "modality")]
    make_samples(SAMPLES, vary=True)
    results = launch_workers(rows, actor="test")
    assert_all_ok(results, agent)
    chaos = Chaos(settings.REDIS_URL, lambda: killable_pids(rows), kill_every=3, outage_at=3, outage_seconds=2,
                  wipe_at=8)
    chaos.start()
    try:
        wait_until(lambda: Outcome.objects.count() == SAMPLES * len(rows), timeout=150,
                   what=f"{SAMPLES * len(rows)} outcomes under chaos",
                   explain=lambda: where_the_missing_are(rows, chaos, agent))
    finally:
        chaos.stop.set()
        chaos.join()
    assert chaos.kills >= 3 and len(chaos.events) == 2, (chaos.kills, chaos.events)  # all during the run
    counts = Outcome.objects.values("sample_id", "annotator_id", "domain_id").annotate(n=Count("id"))
    assert len(counts) == SAMPLES * len(rows) and {c["n"] for c in counts} == {1}
    wanted = set(Sample.objects.values_list("external_id", flat=True))
    time.sleep(1)  # a restarted worker's start-up flush may still be writing
    for row in rows:
        flush_workbook(key_of(row))
        sheet = openpyxl.load_workbook(workbook_path(key_of(row)), read_only=True).active
        ids = [values[0] for values in sheet.iter_rows(min_row=2, values_only=True)]
        assert len(ids) == SAMPLES and set(ids) == wanted, row.name


def killable_pids(rows: list[Worker]) -> list[int]:
    """The chaos stays under the crash-loop breaker: a worker killed MAX_QUICK_FAILURES times in a row, each time
    within QUICK_FAILURE_SECONDS of its start, is given up on purpose (fatal until staff launch it again). On a busy
    machine a boot takes seconds, and a kill every 3 s once tripped it (annotator_2_intensity, the 5th kill 7.8 s
    after its start). A worker one kill short of it is spared until its process has run long enough."""
    pids = []
    for pid, quick_failures in Worker.objects.filter(pk__in=[r.pk for r in rows], pid__isnull=False).values_list(
            "pid", "quick_failures"):
        try:
            ran = time.time() - psutil.Process(pid).create_time()
        except psutil.NoSuchProcess:
            continue
        if quick_failures < MAX_QUICK_FAILURES - 1 or ran >= QUICK_FAILURE_SECONDS:
            pids.append(pid)
    return pids


def where_the_missing_are(rows: list[Worker], chaos: Chaos, agent) -> str:
    """Per worker what is stored and what Redis holds for it, the faults, and the agent's last words: enough to
    tell a lost message (nothing waiting anywhere) from a slow recovery (messages waiting or held)."""
    client = get_redis()
    lines = [f"faults: {chaos.kills} kills, {chaos.events}"]
    for row in Worker.objects.filter(pk__in=[r.pk for r in rows]).select_related("annotator", "domain"):
        key = key_of(row)
        lines.append(f"{row.name}: stored {Outcome.objects.filter(annotator=row.annotator, domain=row.domain).count()}"
                     f", waiting {queue_length(key)} messages, queued set {client.scard(key.queued_key)}, held "
                     f"{len(unacked_tags(key))}, {row.observed_state}/{row.desired_state} pid {row.pid}, quick failures "
                     f"{row.quick_failures}, last error {row.last_error!r}")
    return "\n".join(lines) + "\nagent log:\n" + agent.log.read_text()[-6000:]
