"""Progress counters stay equal to the store: per run, rebuilt without racing stores, repaired within a minute."""

from __future__ import annotations

import pytest
from django.utils import timezone

from tests.helpers import make_samples, wait_until, worker
from tests.worker_processes import assert_all_ok
from workers_app.engine import counters
from workers_app.engine.keys import WorkerKey
from workers_app.engine.queues import populate_queues, progress, sync_keys
from workers_app.engine.store import store_outcomes
from workers_app.fleet.services import launch_worker
from workers_app.models import Annotator, Domain, Outcome, Run, Sample
from workers_app.monitoring.sweep import health_sweep
from workers_app.redis_client import get_redis
from workers_app.runs.current import current_run
from workers_app.runs.services import RunPlan, create_run, switch_run

pytestmark = pytest.mark.django_db
URGENCY = WorkerKey(1, "urgency")


def rows(run: Run, sample_ids: list[int], key: WorkerKey = URGENCY) -> list[dict]:
    """The fields of outcomes as the engine hands them to store_outcomes."""
    annotator, domain = Annotator.objects.get(number=key.annotator), Domain.objects.get(slug=key.domain)
    return [{"run": run, "sample": Sample(pk=pk), "annotator": annotator, "domain": domain, "status": "ok",
             "labels": ["LEVEL_1"], "reason": "", "raw_answer": "<<LEVEL_1>>", "prompt_version": 1, "started_at": timezone.now()} for pk in sample_ids]


def in_store(run: Run, key: WorkerKey = URGENCY) -> int:
    return Outcome.objects.filter(run=run, annotator__number=key.annotator, domain__slug=key.domain).count()


def test_a_message_of_the_previous_run_stored_after_a_switch_counts_for_its_own_run(catalogue):
    samples = make_samples(6)
    first = current_run()
    store_outcomes(URGENCY, rows(first, samples[:2]))
    second = create_run(RunPlan(name="second", annotators=[1], domains=["urgency"]), actor="test")
    switch_run(second, actor="test")
    store_outcomes(URGENCY, rows(second, samples[:1]))
    store_outcomes(URGENCY, rows(first, samples[2:5]))  # a message of the first run that was still in hand

    assert progress(URGENCY) == {"ok": in_store(second), "malformed": 0} == {"ok": 1, "malformed": 0}
    assert counters.read([URGENCY], first)[URGENCY]["ok"] == in_store(first) == 5


def test_a_rebuild_that_a_store_overtakes_counts_again_and_neither_loses_nor_doubles_it(catalogue, monkeypatch):
    samples = make_samples(4)
    run = current_run()
    store_outcomes(URGENCY, rows(run, samples[:2]))
    real_count = counters._stored
    overtaken = []

    def count_then_store(keys, of_run):
        """The store commits a message while the rebuild counts (the race a sync used to lose)."""
        found = real_count(keys, of_run)
        if not overtaken:
            overtaken.append(store_outcomes(URGENCY, rows(run, samples[2:])))
        return found

    monkeypatch.setattr(counters, "_stored", count_then_store)
    sync_keys([URGENCY])

    assert overtaken == [2] and progress(URGENCY) == {"ok": in_store(run), "malformed": 0} == {"ok": 4,
                                                                                              "malformed": 0}


def test_the_sweep_sets_wrong_counters_right_once_a_minute(catalogue):
    samples = make_samples(3)
    run = current_run()
    store_outcomes(URGENCY, rows(run, samples))
    get_redis().hset(URGENCY.progress_key(run.pk), "ok", 211)

    assert health_sweep().repaired_counters == ["annotator_1_urgency"]
    assert progress(URGENCY) == {"ok": 3, "malformed": 0}
    get_redis().hset(URGENCY.progress_key(run.pk), "ok", 5)
    assert health_sweep().repaired_counters == []  # checked once a minute, not every sweep


# Committed: a real agent and worker process store while the run switches.
@pytest.mark.django_db(transaction=True)
def test_switching_runs_while_a_worker_annotates_leaves_the_new_runs_counters_equal_to_the_store(agent):
    Annotator.objects.filter(number=1).update(builtin_latency_ms=40)  # 20 samples a message: ~0.8 s each
    make_samples(200, vary=True)
    row = worker(1, "urgency")
    assert_all_ok([launch_worker(row, actor="test")], agent)
    first = current_run()
    wait_until(lambda: in_store(first) >= 40, what="the first run to be under way")
    second = create_run(RunPlan(name="second", annotators=[1], domains=["urgency"], limit=60), actor="test")
    switch_run(second, actor="test")  # messages of the first run are in the worker's hands now
    populate_queues(1, "urgency")
    wait_until(lambda: in_store(second) == 60, timeout=60, what="the second run")
    wait_until(lambda: progress(URGENCY) == {"ok": 60, "malformed": 0}, timeout=5, what="the second run's counters",
               explain=lambda: str(progress(URGENCY)))
