"""Gold checks with real processes: a fleet agent and its worker process annotate a run with gold items mixed in,
the loopback LLM starts answering them wrongly, and the annotator's workers pause with the reason, once, with one
audit row and one alert."""

from __future__ import annotations

import itertools
import threading

import pytest

from audit.models import AuditLog
from tests.fake_llm import Reply
from tests.helpers import make_reference, make_samples, wait_until
from tests.worker_processes import assert_all_ok
from workers_app.engine.gold import gold_scores
from workers_app.engine.queues import populate_queues
from workers_app.fleet.rows import select_workers
from workers_app.fleet.services import launch_workers
from workers_app.models import Alert, Outcome, RunSample, Sample, Worker
from workers_app.monitoring.gold import gold_sweep
from workers_app.runs.gold import GoldPlan
from workers_app.runs.services import RunPlan, create_run, switch_run

GOLD_TEXT = "A gold post"
RIGHT_FIRST = 5  # gold prompts the LLM answers right before it goes wrong


@pytest.mark.django_db(transaction=True)
def test_an_annotator_whose_gold_answers_go_wrong_is_paused_once_with_one_alert(http_annotator, fake_llm, agent):
    gold = make_samples(10, GOLD_TEXT, vary=True)  # first: queued in id order, they are asked before the rest
    work = make_samples(20, vary=True)
    reference = make_reference("experts", {(s, "urgency", ""): ["LEVEL_1"] for s in gold})
    run = create_run(RunPlan(name="checked", annotators=[1], domains=["urgency"],
                             corpora=[Sample.objects.get(pk=work[0]).corpus_id],
                             gold=GoldPlan(reference, share=0.5, threshold=0.7, min_items=4, window=6)), actor="test")
    assert RunSample.objects.filter(run=run, gold=True).count() == 10
    switch_run(run, actor="test")
    seen = itertools.count(1)
    lock = threading.Lock()

    def answer(body: dict) -> str:
        if GOLD_TEXT not in str(body.get("messages")):
            return "<<LEVEL_2>>"
        with lock:
            return "<<LEVEL_1>>" if next(seen) <= RIGHT_FIRST else "<<LEVEL_3>>"

    fake_llm.default = Reply(delay=0.05)
    fake_llm.content_for = answer
    workers = select_workers(1, "urgency")
    assert_all_ok(launch_workers(workers, actor="test"), agent)
    populate_queues(1, "urgency")

    def paused() -> bool:
        gold_sweep()
        return Worker.objects.filter(pk=workers[0].pk, desired_state="paused", observed_state="paused").exists()

    wait_until(paused, timeout=60, what="the worker to pause on its gold accuracy")
    [event] = workers[0].events.filter(reason__startswith="gold: ")
    assert event.reason.startswith("gold: gold accuracy 0.") and event.reason.endswith("< 0.70 over 6 items")
    [entry] = AuditLog.objects.filter(action="gold_check_failed")
    assert entry.target == "annotator 1" and entry.parameters["items"] == 6 and entry.detail["paused"] == [
        workers[0].name]
    score = gold_scores(run)[1]
    assert score.items == 6 and score.accuracy < 0.7
    gold_sweep()
    [alert] = Alert.objects.filter(kind="gold", resolved_at__isnull=True)
    assert alert.key == "gold:checked:1"
    # It stopped long before the end of the run (measured: 8 to 10 of the 30 stored, the 7th gold answer its last).
    assert Outcome.objects.filter(run=run).count() < 20
    assert Alert.objects.filter(kind="gold").count() == 1
