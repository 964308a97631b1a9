"""A batch-mode worker (a real Celery process) killed with SIGKILL before, during and after it submits its batches
to the loopback batch API: after a restart every (sample, annotator, domain) is stored exactly once and no batch was
submitted twice (the fake counts its create calls); so is the fleet agent killed with its worker while batches are
in flight."""

from __future__ import annotations

import os
import signal

import pytest
from django.db.models import Count, Sum

from tests.fake_batch import serving_fake_batch_api
from tests.helpers import make_samples, wait_until, worker
from tests.worker_processes import AgentProcess, WorkerProcess, assert_all_ok
from workers_app.engine.keys import WorkerKey
from workers_app.engine.queues import populate_queues, requeue_unacked
from workers_app.fleet.services import launch_worker
from workers_app.models import Annotator, Batch, BatchRequest, Outcome, Worker

pytestmark = pytest.mark.django_db(transaction=True)

KEY = WorkerKey(1, "urgency")
SAMPLES = 30


@pytest.fixture
def batch_api(catalogue):
    with serving_fake_batch_api() as fake:
        Annotator.objects.filter(number=1).update(
            backend=Annotator.Backend.OPENAI_COMPATIBLE, base_url=fake.url, model="fake-model",
            mode=Annotator.Mode.BATCH, batch_size=10)
        make_samples(SAMPLES, vary=True)
        assert populate_queues(1, "urgency") == {str(KEY): SAMPLES}
        yield fake


def start_worker() -> WorkerProcess:
    return WorkerProcess(KEY.queue, BATCH_POLL_SECONDS="1").wait_ready()


def explain(fake) -> str:
    return (f"outcomes {Outcome.objects.count()}, batches {list(Batch.objects.values_list('state', 'requests'))}, "
            f"pending {BatchRequest.objects.filter(batch=None).count()}, creates {fake.creates}")


def assert_stored_once_and_submitted_once(fake) -> None:
    wait_until(lambda: Outcome.objects.count() >= SAMPLES, timeout=90, what="every outcome",
               explain=lambda: explain(fake))
    per_sample = Outcome.objects.values("sample_id").annotate(n=Count("id"))
    assert len(per_sample) == SAMPLES and {row["n"] for row in per_sample} == {1}
    provider_ids = list(Batch.objects.values_list("provider_id", flat=True))
    assert fake.creates == len(provider_ids) == len(set(provider_ids)), explain(fake)
    assert set(provider_ids) == set(fake.batches)
    assert Batch.objects.aggregate(n=Sum("requests"))["n"] == SAMPLES  # no request asked in two batches
    assert set(BatchRequest.objects.values_list("attempts", flat=True)) == {1}


def restart_after_kill(worker: WorkerProcess) -> WorkerProcess:
    worker.kill()
    requeue_unacked(KEY)  # what the agent does for a dead worker: its unacknowledged messages come back
    return start_worker()


def test_a_kill_before_submission_submits_each_batch_once_after_the_restart(batch_api):
    batch_api.down = True  # the create calls fail: samples are taken and batches recorded, none submitted
    worker = start_worker()
    try:
        wait_until(lambda: Batch.objects.exists(), what="a batch recorded", explain=lambda: explain(batch_api))
        assert batch_api.creates == 0
        batch_api.down = False
        worker = restart_after_kill(worker)
        assert_stored_once_and_submitted_once(batch_api)
    finally:
        assert worker.stop() == 0


def test_a_kill_during_the_create_call_adopts_the_providers_batch(batch_api):
    batch_api.create_delay = 5.0  # the provider records the batch at once and answers 5 s later
    worker = start_worker()
    try:
        wait_until(lambda: batch_api.creates >= 1, what="a create call", explain=lambda: explain(batch_api))
        worker.kill()  # the worker never learns the batch's id
        batch_api.create_delay = 0.0
        assert Batch.objects.filter(state=Batch.State.SUBMITTING).exists()
        requeue_unacked(KEY)
        worker = start_worker()
        assert_stored_once_and_submitted_once(batch_api)
    finally:
        assert worker.stop() == 0


def test_a_kill_with_batches_in_flight_polls_them_after_the_restart(batch_api):
    batch_api.hold.set()  # batches stay in progress
    worker = start_worker()
    try:
        wait_until(lambda: Batch.objects.filter(state=Batch.State.IN_FLIGHT).aggregate(n=Sum("requests"))["n"]
                   == SAMPLES, what="every sample in a batch in flight", explain=lambda: explain(batch_api))
        submitted = batch_api.creates
        worker = restart_after_kill(worker)
        batch_api.hold.clear()
        assert_stored_once_and_submitted_once(batch_api)
        assert batch_api.creates == submitted
    finally:
        assert worker.stop() == 0


def test_a_killed_agent_and_worker_with_batches_in_flight_lose_nothing_after_a_new_agent(batch_api):
    batch_api.hold.set()
    row = worker(1, "urgency")
    first = AgentProcess(BATCH_POLL_SECONDS="1").wait_ready()
    second = None
    try:
        assert_all_ok([launch_worker(row, actor="test")], first)
        wait_until(lambda: Batch.objects.filter(state=Batch.State.IN_FLIGHT).aggregate(n=Sum("requests"))["n"]
                   == SAMPLES, what="every sample in a batch in flight", explain=lambda: explain(batch_api))
        submitted = batch_api.creates
        pid = Worker.objects.get(pk=row.pk).pid
        first.process.kill()
        first.process.wait()
        os.kill(pid, signal.SIGKILL)
        batch_api.hold.clear()
        second = AgentProcess(BATCH_POLL_SECONDS="1").wait_ready()  # it starts the worker that should run
        assert_stored_once_and_submitted_once(batch_api)
        assert batch_api.creates == submitted
    finally:
        Worker.objects.update(desired_state=Worker.Desired.STOPPED)
        for agent in (first, second):
            if agent is not None:
                agent.stop()
