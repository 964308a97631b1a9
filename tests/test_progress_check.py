"""The progress check counts idleness from when a worker was given work, not from its last outcome long ago.

Real agent, real worker process, the loopback LLM answering slowly, and the real health sweep run in this process.
"""

from __future__ import annotations

import time

import pytest

from tests.fake_llm import Reply
from tests.helpers import make_samples, stored, wait_until, worker
from tests.worker_processes import assert_all_ok
from workers_app.engine.queues import populate_queues
from workers_app.fleet.services import launch_worker, pause_worker, resume_worker
from workers_app.models import Alert, Annotator, WorkerEvent
from workers_app.monitoring.sweep import AUTO_RESTART, health_sweep

pytestmark = pytest.mark.django_db(transaction=True)
STUCK_SECONDS = 4


@pytest.fixture
def slow_llm(http_annotator, fake_llm, settings):
    """Answers take 2.5 s (longer than a heartbeat, so the sweep sees the samples in hand); a worker idle longer
    than STUCK_SECONDS with work waiting counts as stuck."""
    settings.HEALTH_STUCK_SECONDS = STUCK_SECONDS
    Annotator.objects.filter(pk=http_annotator.pk).update(timeout_seconds=30.0)
    fake_llm.default = Reply(content="Final answer: <<LEVEL_1>>", delay=2.5)
    return fake_llm


def sweep_until_stored(count: int, timeout: float = 60) -> list[str]:
    """Sweep as beat would (more often), until the worker has stored ``count``; every worker it restarted."""
    restarted: list[str] = []
    deadline = time.monotonic() + timeout
    while stored(1, "urgency") < count:
        assert time.monotonic() < deadline, f"{stored(1, 'urgency')} of {count} stored after {timeout} s"
        restarted += health_sweep().restarted
        time.sleep(0.3)
    return restarted


def auto_restarts() -> int:
    return WorkerEvent.objects.filter(reason__startswith=AUTO_RESTART).count()


def test_work_after_a_quiet_spell_longer_than_the_stuck_limit_restarts_nothing(agent, slow_llm):
    row = worker(1, "urgency")
    assert_all_ok([launch_worker(row, actor="test")], agent)
    make_samples(2, vary=True)
    populate_queues(1, "urgency")
    wait_until(lambda: stored(1, "urgency") == 2, what="the first run")
    time.sleep(STUCK_SECONDS + 2)  # the quiet spell: nothing to wait for but time
    make_samples(3, vary=True, text="a second run of posts")
    populate_queues(1, "urgency")
    assert sweep_until_stored(5) == []
    assert auto_restarts() == 0 and not Alert.objects.filter(kind="stuck").exists()


def test_a_worker_resumed_after_a_long_pause_with_work_waiting_is_not_restarted(agent, slow_llm):
    row = worker(1, "urgency")
    assert_all_ok([launch_worker(row, actor="test")], agent)
    pause_worker(row, actor="test")
    make_samples(3, vary=True)
    populate_queues(1, "urgency")
    time.sleep(STUCK_SECONDS + 2)  # paused longer than the limit, its work waiting
    assert resume_worker(row, actor="test").ok
    assert sweep_until_stored(3) == []
    assert auto_restarts() == 0 and not Alert.objects.filter(kind="stuck").exists()


def test_a_worker_that_finishes_nothing_with_work_waiting_is_still_restarted(agent, slow_llm):
    slow_llm.default = Reply(content="Final answer: <<LEVEL_1>>", delay=25)  # a call that hangs
    row = worker(1, "urgency")
    assert_all_ok([launch_worker(row, actor="test")], agent)
    make_samples(2, vary=True)
    populate_queues(1, "urgency")
    deadline = time.monotonic() + STUCK_SECONDS + 10
    while not auto_restarts():
        assert time.monotonic() < deadline, "the stuck worker was not restarted"
        health_sweep()
        time.sleep(0.3)
    assert WorkerEvent.objects.filter(worker=row, reason__startswith=f"{AUTO_RESTART}: stuck").exists()
