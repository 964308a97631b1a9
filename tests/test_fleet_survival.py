"""The fleet rides out what real operations throw at it: a killed worker, a wiped Redis. Real agent, real workers."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import psutil
import pytest
from django.db.models import Count

from annotation_site.celery import app
from annotation_site.redis_service import start_private
from tests.helpers import make_samples, stored, wait_until, worker
from tests.worker_processes import ROOT, AgentProcess, assert_all_ok, running_agent, worker_env
from workers_app.engine.queues import claim_samples, populate_queues
from workers_app.fleet.rows import key_of
from workers_app.fleet.services import launch_worker, pause_worker, resume_worker
from workers_app.models import Annotator, Outcome, Worker
from workers_app.redis_client import get_redis
from workers_app.runs.current import current_run

pytestmark = pytest.mark.django_db(transaction=True)
LOCK_SECONDS = 5


def _each_once(number: int, total: int) -> None:
    counts = Outcome.objects.filter(annotator__number=number).values("sample_id").annotate(n=Count("id"))
    assert len(counts) == total and {c["n"] for c in counts} == {1}


def test_what_a_killed_worker_held_is_requeued_at_once_without_anyone_launching_again(agent):
    row = worker(4, "urgency")
    assert_all_ok([launch_worker(row, actor="test")], agent)
    make_samples(300)
    populate_queues(4, "urgency")
    wait_until(lambda: stored(4, "urgency") >= 60, what="work to start")
    os.kill(Worker.objects.get(pk=row.pk).pid, signal.SIGKILL)
    # Without the requeue the held messages would wait for the broker's visibility timeout (over 15 minutes).
    wait_until(lambda: stored(4, "urgency") == 300, timeout=60, what="all 300 outcomes after the kill")
    _each_once(4, 300)
    assert "requeued" in agent.log.read_text()


def test_a_wiped_redis_mid_run_is_rebuilt_by_the_agent_and_the_run_completes(agent):
    row = worker(2, "intensity")
    assert_all_ok([launch_worker(row, actor="test")], agent)
    make_samples(300)
    populate_queues(2, "intensity")
    wait_until(lambda: stored(2, "intensity") >= 60, what="work to start")
    get_redis().flushdb()
    wait_until(lambda: stored(2, "intensity") == 300, timeout=90, what="all 300 outcomes after the wipe")
    _each_once(2, 300)
    assert agent.process.poll() is None, "the agent must survive the wipe"
    assert "taking it again" in agent.log.read_text()


def test_samples_lost_from_an_idle_workers_queue_are_handed_out_again_by_the_agent(catalogue):
    Annotator.objects.update(builtin_latency_ms=20)
    with running_agent(LOST_WORK_CHECK_SECONDS="1") as agent:
        row = worker(3, "modality")
        assert_all_ok([launch_worker(row, actor="test")], agent)
        make_samples(40)
        # Claimed with no message sent: what a kill between kombu's BRPOP and its unacked record leaves.
        claim_samples([key_of(row)], current_run())
        wait_until(lambda: stored(3, "modality") == 40, timeout=30, what="the lost samples stored")
        _each_once(3, 40)
        assert "40 sample(s) were in no queue, no worker's hands and no outcome; queued again" in agent.log.read_text()


def test_ps_names_each_worker_and_the_agent(agent):
    row = worker(1, "modality")
    assert_all_ok([launch_worker(row, actor="test")], agent)
    row.refresh_from_db()
    assert f"[celeryd: {row.node_name}" in " ".join(psutil.Process(row.pid).cmdline())
    assert " ".join(psutil.Process(agent.process.pid).cmdline()).startswith("annotation fleet agent ")


def _thread_nices(pid: int) -> set[int]:
    nices = set()
    for thread in psutil.Process(pid).threads():
        try:
            nices.add(os.getpriority(os.PRIO_PROCESS, thread.id))
        except ProcessLookupError:
            continue  # ended meanwhile
    return nices


def test_every_thread_of_a_ready_worker_runs_at_the_workers_lower_priority(agent):
    row = worker(1, "modality")
    assert_all_ok([launch_worker(row, actor="test")], agent)
    row.refresh_from_db()
    wanted = min(19, psutil.Process(agent.process.pid).nice() + 10)  # FLEET_WORKER_NICE's default
    wait_until(lambda: _thread_nices(row.pid) == {wanted}, what=f"every thread of the worker at nice {wanted}")
    assert len(psutil.Process(row.pid).threads()) > 1


def consuming(row: Worker) -> bool:
    """What the worker process itself says: observed ``running`` is recorded as its consumer is being added."""
    replies = app.control.inspect(destination=[row.node_name], timeout=1).active_queues() or {}
    return any(queue["name"] == row.name for queues in replies.values() for queue in queues)


def test_a_consumer_cancelled_behind_the_products_back_is_set_right_within_ten_seconds(agent):
    row = worker(5, "adjunct")
    assert_all_ok([launch_worker(row, actor="test")], agent)
    row.refresh_from_db()
    wait_until(lambda: consuming(row), what="the worker consuming its queue")
    app.control.cancel_consumer(row.name, destination=[row.node_name], reply=True, timeout=2)
    make_samples(100)
    populate_queues(5, "adjunct")
    wait_until(lambda: stored(5, "adjunct") == 100, timeout=10 + 5, what="the drift corrected and the queue drained")
    assert row.events.filter(reason__startswith="drift: desired running but not consuming").exists()


def test_pausing_and_resuming_through_the_product_is_never_mistaken_for_drift(agent):
    row = worker(3, "modality")
    assert_all_ok([launch_worker(row, actor="test")], agent)
    for _ in range(3):
        pause_worker(row, actor="test")
        time.sleep(1.5)
        resume_worker(row, actor="test")
        time.sleep(1.5)
    time.sleep(3)
    assert not row.events.filter(reason__startswith="drift").exists()
    assert Worker.objects.get(pk=row.pk).observed_state == "running"


def test_a_redis_outage_longer_than_the_agents_lock_is_ridden_out_and_the_run_completes(catalogue, tmp_path):
    """Its own Redis, stopped mid-run for longer than the agent's host lock lives and started again with its data
    (the lock gone): the agent takes its lock again, and it and the worker carry on."""
    redis = start_private(tmp_path / "redis", persist=True)
    port = int(redis.url.rsplit(":", 1)[1].split("/")[0])
    Annotator.objects.update(builtin_latency_ms=50)
    make_samples(300)
    process = AgentProcess(REDIS_URL=redis.url, FLEET_AGENT_LOCK_SECONDS=str(LOCK_SECONDS))
    try:
        wait_until(lambda: Worker.objects.exists(), what="the agent's worker rows")
        row = worker(1, "therapeutic")
        Worker.objects.filter(pk=row.pk).update(desired_state=Worker.Desired.RUNNING)
        subprocess.run([sys.executable, "manage.py", "populate_queues", "--annotator", "1", "--domain",
                        "therapeutic"], cwd=ROOT, env=worker_env(REDIS_URL=redis.url), check=True,
                       capture_output=True)
        wait_until(lambda: stored(1, "therapeutic") >= 40, what="work to start")
        redis.stop()
        time.sleep(LOCK_SECONDS + 3)
        redis = start_private(tmp_path / "redis", persist=True, port=port)
        wait_until(lambda: stored(1, "therapeutic") == 300, timeout=120, what="all 300 outcomes after the outage")
        _each_once(1, 300)
        assert process.process.poll() is None, "the agent must ride out the outage"
        assert "Redis unreachable" in process.log.read_text()
        assert "the host lock of" in process.log.read_text()  # it expired during the outage and was taken again
    finally:
        Worker.objects.update(desired_state=Worker.Desired.STOPPED)
        process.stop()
        redis.stop()
