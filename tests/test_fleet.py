"""The fleet with a real agent, real worker processes and real Redis."""

from __future__ import annotations

import os
import signal
import threading
import time

import psutil
import pytest
from django.db.models import Count

from tests.helpers import make_samples, stored, wait_until, worker
from tests.worker_processes import AgentProcess, assert_all_ok
from workers_app.engine.keys import WorkerKey
from workers_app.engine.live import read_live
from workers_app.engine.queues import populate_queues
from workers_app.fleet.rows import key_of
from workers_app.fleet.services import (
    launch_worker,
    pause_worker,
    restart_worker,
    resume_worker,
    run_bulk,
    stop_worker,
)
from workers_app.models import Annotator, Outcome, Worker
from workers_app.runs.files import workbook_path

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_paused_worker_consumes_nothing_while_the_others_work_and_drains_when_resumed(agent):
    rows = [worker(1, "urgency"), worker(1, "intensity"), worker(1, "modality")]
    results = run_bulk(launch_worker, rows, actor="test")
    assert_all_ok(results, agent)
    pause_worker(rows[0], actor="test")
    make_samples(60)
    for row in rows:
        populate_queues(1, row.domain.slug)
    wait_until(lambda: stored(1, "intensity") == 60 and stored(1, "modality") == 60, what="the others")
    time.sleep(5)
    assert stored(1, "urgency") == 0
    assert resume_worker(rows[0], actor="test").message == "consuming"
    wait_until(lambda: stored(1, "urgency") == 60, what="the resumed worker to drain its queue")


def test_a_paused_worker_killed_with_sigkill_is_restarted_and_stays_paused(agent):
    row = worker(2, "urgency")
    assert_all_ok([launch_worker(row, actor="test")], agent)
    pause_worker(row, actor="test")
    old_pid = Worker.objects.get(pk=row.pk).pid
    os.kill(old_pid, signal.SIGKILL)
    wait_until(lambda: Worker.objects.get(pk=row.pk).pid not in (None, old_pid)
               and Worker.objects.get(pk=row.pk).observed_state == "paused", what="a paused restart")
    make_samples(20)
    populate_queues(2, "urgency")
    time.sleep(3)
    assert stored(2, "urgency") == 0
    assert Worker.objects.get(pk=row.pk).restarts == 1


def test_a_running_worker_killed_mid_run_is_restarted_and_loses_or_duplicates_nothing(agent):
    row = worker(3, "urgency")
    assert_all_ok([launch_worker(row, actor="test")], agent)
    make_samples(300)
    populate_queues(3, "urgency")
    wait_until(lambda: stored(3, "urgency") >= 60, what="work to start")
    os.kill(Worker.objects.get(pk=row.pk).pid, signal.SIGKILL)
    wait_until(lambda: Worker.objects.get(pk=row.pk).observed_state == "running"
               and Worker.objects.get(pk=row.pk).restarts == 1, what="the agent to restart it")
    assert_all_ok([launch_worker(row, actor="test")], agent)  # its pre-sync requeues what the killed process held
    wait_until(lambda: stored(3, "urgency") == 300, timeout=60, what="all 300 outcomes")
    counts = Outcome.objects.filter(annotator__number=3).values("sample_id").annotate(n=Count("id"))
    assert {c["n"] for c in counts} == {1} and len(counts) == 300


def test_a_graceful_stop_flushes_the_workbook_before_the_process_exits(agent):
    row = worker(4, "urgency")
    assert_all_ok([launch_worker(row, actor="test")], agent)
    make_samples(40)
    populate_queues(4, "urgency")
    wait_until(lambda: stored(4, "urgency") == 40, what="the work")
    pid = Worker.objects.get(pk=row.pk).pid
    result = stop_worker(row, actor="test")
    assert result.ok and result.state == "stopped" and not psutil.pid_exists(pid)
    from workers_app.engine.integrity import workbook_rows

    assert workbook_rows(workbook_path(WorkerKey(4, "urgency"))) == 40


def test_a_forced_stop_kills_the_process_within_the_grace_period(agent):
    row = worker(4, "intensity")
    Annotator.objects.filter(number=4).update(builtin_latency_ms=60_000)  # a task that would run a minute
    assert_all_ok([launch_worker(row, actor="test")], agent)
    make_samples(1)
    populate_queues(4, "intensity")
    wait_until(lambda: read_live([key_of(row)], time.time())[0].current, what="the minute-long task to be under way")
    started = time.monotonic()
    result = stop_worker(row, actor="test", force=True)
    assert result.ok and time.monotonic() - started < 3 + 5


def test_two_concurrent_restarts_of_one_worker_make_exactly_one_new_process(agent):
    row = worker(5, "urgency")
    assert_all_ok([launch_worker(row, actor="test")], agent)
    first_pid = Worker.objects.get(pk=row.pk).pid
    results = []
    threads = [threading.Thread(target=lambda: results.append(restart_worker(worker(5, "urgency"), actor="t")))
               for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    after = Worker.objects.get(pk=row.pk)
    assert after.pid != first_pid and after.restarts == 1
    assert sorted(r.message for r in results) == ["restarted", "restarted by a concurrent request"]
    assert after.events.filter(to_state="starting").count() == 2  # the first launch and one restart


def test_a_second_agent_for_the_same_host_refuses_to_run(catalogue):
    first = AgentProcess(FLEET_AGENT_LOCK_SECONDS="3").wait_ready()
    try:
        second = AgentProcess(FLEET_AGENT_LOCK_SECONDS="3")
        assert second.process.wait(timeout=30) == 3
        assert "another fleet agent is running" in second.log.read_text()
        assert first.process.poll() is None
    finally:
        first.stop()
