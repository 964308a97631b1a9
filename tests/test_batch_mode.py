"""Batch mode in one process against the loopback batch APIs (tests/fake_batch.py): requests recorded before the
ack, batches submitted once, answers stored through the live path at the batch price, failures sent back once,
foreign results ignored, budgets reserved and settled, pauses respected. The kills are in test_batch_survival.py."""

from __future__ import annotations

import json
import logging
from decimal import Decimal

import pytest

from audit.models import AuditLog
from tests.batches import BATCH_PER_CALL, URGENCY, batch_annotator, one_batch_in_flight, take
from tests.fake_batch import serving_fake_batch_api
from tests.helpers import worker
from workers_app.engine import batch as batch_mode
from workers_app.engine.annotate import annotate_samples
from workers_app.engine.batch import poll_in_flight, resume_submitting, submit_pending
from workers_app.engine.budget import spent
from workers_app.engine.ratelimit import counters_key
from workers_app.fleet.lost_work import LostWork
from workers_app.models import (
    Annotator,
    Batch,
    BatchRequest,
    MalformedAttempt,
    Outcome,
    Worker,
)
from workers_app.redis_client import get_redis
from workers_app.runs.current import current_run


@pytest.fixture
def batch_api():
    with serving_fake_batch_api(usage={"prompt_tokens": 100, "completion_tokens": 12}) as fake:
        yield fake


@pytest.fixture(autouse=True)
def no_settling_wait(monkeypatch):
    monkeypatch.setattr(batch_mode, "SETTLE_SECONDS", 0)


def run_batches() -> None:
    """What the batcher does in one pass."""
    resume_submitting(URGENCY, worker="w")
    poll_in_flight(URGENCY, worker="w")
    while submit_pending(URGENCY, worker="w"):
        pass


@pytest.mark.django_db
@pytest.mark.parametrize("protocol", [Annotator.BatchProtocol.OPENAI, Annotator.BatchProtocol.ANTHROPIC])
def test_a_batch_is_answered_through_the_live_path_at_the_batch_price(catalogue, batch_api, protocol):
    batch_annotator(batch_api.url, protocol=protocol)
    samples = take(4)
    assert BatchRequest.objects.filter(batch=None).count() == 4 and not Outcome.objects.exists()
    run_batches()  # submitted
    run_batches()  # polled: ended at once, stored
    outcomes = Outcome.objects.filter(sample_id__in=samples)
    assert sorted(outcomes.values_list("sample_id", flat=True)) == sorted(samples)
    assert {(o.status, tuple(o.labels), o.cost) for o in outcomes} == {("ok", ("LEVEL_1",), BATCH_PER_CALL)}
    batch = Batch.objects.get()
    assert (batch.state, batch.requests, batch.succeeded, batch.cost) == ("ended", 4, 4, 4 * BATCH_PER_CALL)
    assert batch_api.creates == 1
    counted = get_redis().hgetall(counters_key(1))
    assert (counted["requests:batch"], counted["tokens_in"], counted["tokens_out"]) == ("4", "400", "48")
    if protocol == Annotator.BatchProtocol.OPENAI:
        [upload] = [data for name, data in batch_api.files.items() if name.startswith("file_")]
        lines = [json.loads(line) for line in upload.splitlines()]
        assert {line["custom_id"] for line in lines} == {f"r{current_run().pk}-s{s}-urgency" for s in samples}
        assert lines[0]["url"] == "/v1/chat/completions" and lines[0]["body"]["model"] == "fake-model"


@pytest.mark.django_db
def test_a_malformed_batch_answer_is_asked_once_more_and_the_outcome_carries_both_costs(catalogue, batch_api):
    batch_api.content_for = lambda prompt: "I cannot tell."
    annotator = batch_annotator(batch_api.url, size=2)
    take(2)
    run_batches()
    poll_in_flight(URGENCY, worker="w")  # ended: both malformed, logged, back to pending with their cost
    assert not Outcome.objects.exists() and MalformedAttempt.objects.count() == 2
    assert set(BatchRequest.objects.values_list("batch", "spent", "last_error")) == {
        (None, BATCH_PER_CALL, "malformed answer")}
    batch_api.content_for = lambda prompt: "<<LEVEL_2>>"
    run_batches()
    run_batches()
    assert batch_api.creates == 2
    assert {(o.status, tuple(o.labels), o.attempts, o.cost) for o in Outcome.objects.all()} == {
        ("ok", ("LEVEL_2",), 2, 2 * BATCH_PER_CALL)}
    assert list(Batch.objects.values_list("cost", flat=True)) == [2 * BATCH_PER_CALL] * 2  # each paid its own
    assert spent(annotator) == 4 * BATCH_PER_CALL


@pytest.mark.django_db
def test_a_batch_answer_malformed_twice_is_logged_and_flagged_like_a_live_one(catalogue, batch_api):
    batch_api.content_for = lambda prompt: "I cannot tell."
    batch_annotator(batch_api.url, size=2)
    take(2)
    for _ in range(4):
        run_batches()
    assert batch_api.creates == 2
    assert {(o.status, o.attempts, o.cost) for o in Outcome.objects.all()} == {("malformed", 2, 2 * BATCH_PER_CALL)}
    assert MalformedAttempt.objects.count() == 4 and MalformedAttempt.objects.first().cost == BATCH_PER_CALL


@pytest.mark.django_db
def test_a_malformed_batch_answer_is_not_asked_again_when_the_annotator_allows_no_retry(catalogue, batch_api):
    batch_api.content_for = lambda prompt: "I cannot tell."
    annotator = batch_annotator(batch_api.url, size=2)
    Annotator.objects.filter(pk=annotator.pk).update(max_retries=0)
    take(2)
    run_batches()
    run_batches()
    assert batch_api.creates == 1
    assert {(o.status, o.attempts) for o in Outcome.objects.all()} == {("malformed", 1)}


@pytest.mark.django_db
def test_failed_requests_go_back_once_then_count_as_errors(catalogue, batch_api):
    batch_annotator(batch_api.url)
    samples = take(4)
    unlucky = f"r{current_run().pk}-s{samples[0]}-urgency"
    batch_api.fail = lambda custom_id: custom_id == unlucky
    run_batches()
    run_batches()  # the first batch ends; the failed request is pending again and goes in a second batch
    assert Outcome.objects.count() == 3
    assert BatchRequest.objects.get(custom_id=unlucky).attempts == 2
    run_batches()  # the second batch ends: failed again, stored as an error
    error = Outcome.objects.get(sample_id=samples[0])
    assert (error.status, error.reason, error.attempts) == ("malformed", "batch_error", 2)
    assert Outcome.objects.count() == 4 and batch_api.creates == 2
    assert [b.failed for b in Batch.objects.order_by("pk")] == [1, 1]


@pytest.mark.django_db
def test_an_expired_batch_stores_what_was_answered_and_sends_the_rest_back(catalogue, batch_api):
    batch_api.expire, batch_api.expire_answers = True, 3
    batch_annotator(batch_api.url, size=5)
    take(5)
    run_batches()
    run_batches()
    assert Outcome.objects.count() == 3
    assert BatchRequest.objects.filter(attempts=2).count() == 2  # back, and submitted again by the same pass
    assert Batch.objects.get(provider_status="expired").failed == 2


@pytest.mark.django_db
def test_a_result_naming_nothing_we_asked_is_ignored_and_logged(catalogue, batch_api, caplog):
    batch_api.foreign = True
    batch_annotator(batch_api.url, size=2)
    take(2)
    with caplog.at_level(logging.WARNING, logger="workers_app.engine.batch"):
        run_batches()
        run_batches()
    assert Outcome.objects.count() == 2
    assert "r999999-s999999-nowhere" in caplog.text and "did not ask" in caplog.text


@pytest.mark.django_db
def test_a_redelivered_message_records_nothing_new(catalogue, batch_api):
    batch_annotator(batch_api.url)
    samples = take(2)
    annotate_samples(samples, URGENCY, worker="w", run_id=current_run().pk)
    assert BatchRequest.objects.count() == 2


@pytest.mark.django_db
def test_a_batch_whose_create_call_failed_is_submitted_later_once(catalogue, batch_api):
    batch_annotator(batch_api.url, size=3)
    take(3)
    batch_api.down = True
    with pytest.raises(batch_mode.TransientBackendError):
        submit_pending(URGENCY, worker="w")
    assert Batch.objects.get().state == "submitting" and batch_api.creates == 0
    batch_api.down = False
    run_batches()  # not found at the provider: submitted now
    run_batches()
    assert batch_api.creates == 1 and Outcome.objects.count() == 3


@pytest.mark.django_db
@pytest.mark.parametrize("protocol", [Annotator.BatchProtocol.OPENAI, Annotator.BatchProtocol.ANTHROPIC])
def test_a_batch_created_but_not_recorded_is_found_at_the_provider(catalogue, batch_api, protocol):
    """A kill between the provider's create and our record of its id: the restart adopts the provider's batch."""
    one_batch_in_flight(batch_api, 3, protocol)
    Batch.objects.update(state=Batch.State.SUBMITTING, provider_id="", submitted_at=None)  # the record never made
    batch_api.hold.clear()
    run_batches()
    run_batches()
    assert batch_api.creates == 1 and Outcome.objects.count() == 3
    assert Batch.objects.get().provider_id in batch_api.batches


@pytest.mark.django_db
def test_a_budget_that_allows_two_of_three_batches_submits_two(catalogue, batch_api):
    annotator = batch_annotator(batch_api.url, size=2)
    take(6)
    batch_api.hold.set()  # in flight until released
    first = submit_pending(URGENCY, worker="w")
    assert first.reserved > 2 * BATCH_PER_CALL  # the worst case: every request may answer max_tokens
    Annotator.objects.filter(pk=annotator.pk).update(budget=first.reserved * Decimal("2.5"))
    run_batches()
    assert batch_api.creates == 2 and Batch.objects.count() == 2
    assert BatchRequest.objects.filter(batch=None).count() == 2
    assert spent(annotator) == 2 * first.reserved
    batch_api.hold.clear()
    run_batches()  # the two end and settle on their actual cost: the third fits now
    assert spent(Annotator.objects.get(pk=annotator.pk)) == 4 * BATCH_PER_CALL + first.reserved
    run_batches()
    assert batch_api.creates == 3 and Outcome.objects.count() == 6
    assert spent(Annotator.objects.get(pk=annotator.pk)) == 6 * BATCH_PER_CALL


class Killed(BaseException):
    """The process dies here: nothing after this line runs."""


def kill_at(monkeypatch, where: str) -> None:
    """Die at ``where``: the batch's record (``create``), the reservation's charge, or the create call."""
    def die(*args, **kwargs):
        raise Killed(where)
    if where == "create":
        monkeypatch.setattr(Batch.objects, "create", die)
    else:
        monkeypatch.setattr(batch_mode, where, die)


@pytest.mark.django_db
@pytest.mark.parametrize("killed_at", ["create", "charge", "_send"])
def test_a_kill_around_the_reservation_counts_the_batch_once_after_the_restart(catalogue, batch_api, monkeypatch,
                                                                                killed_at):
    """Killed before the batch's row is recorded, or after it but before or after its reservation reached the
    spend counter: after the restart the reservation is counted exactly once, and settles on the actual cost."""
    annotator = batch_annotator(batch_api.url, size=2)
    Annotator.objects.filter(pk=annotator.pk).update(budget=100)
    take(2)
    assert spent(annotator) == 0  # the counter exists from here on
    batch_api.hold.set()
    with monkeypatch.context() as patched:
        kill_at(patched, killed_at)
        with pytest.raises(Killed):
            submit_pending(URGENCY, worker="w")
    run_batches()  # the restart: the batch is submitted once, its reservation counted once
    assert batch_api.creates == 1 and spent(annotator) == Batch.objects.get().reserved
    batch_api.hold.clear()
    run_batches()
    assert Outcome.objects.count() == 2 and spent(annotator) == 2 * BATCH_PER_CALL


@pytest.mark.django_db
def test_a_budget_spent_already_pauses_the_workers_as_in_live_mode(catalogue, batch_api):
    annotator = batch_annotator(batch_api.url, size=2)
    Annotator.objects.filter(pk=annotator.pk).update(budget=0)
    Worker.objects.filter(pk=worker(1, "urgency").pk).update(desired_state=Worker.Desired.RUNNING)
    take(2)
    run_batches()
    assert batch_api.creates == 0
    assert worker(1, "urgency").desired_state == Worker.Desired.PAUSED
    assert worker(1, "urgency").events.get().reason.startswith("budget: annotator 1")


@pytest.mark.django_db
def test_pausing_the_worker_stops_new_submissions(catalogue, batch_api):
    batch_annotator(batch_api.url, size=2)
    take(2)
    Worker.objects.filter(pk=worker(1, "urgency").pk).update(desired_state=Worker.Desired.PAUSED)
    run_batches()
    assert batch_api.creates == 0 and not Batch.objects.exists()
    Worker.objects.filter(pk=worker(1, "urgency").pk).update(desired_state=Worker.Desired.RUNNING)
    run_batches()
    assert batch_api.creates == 1


@pytest.mark.django_db
def test_batch_mode_is_refused_for_an_in_process_backend(catalogue):
    annotator = Annotator.objects.get(number=2)
    annotator.mode = Annotator.Mode.BATCH
    with pytest.raises(Exception, match="Batch mode is for the OpenAI-compatible backend"):
        annotator.full_clean()


@pytest.mark.django_db
def test_metrics_show_the_batches_in_flight_their_requests_age_and_what_waits(catalogue, batch_api, client):
    one_batch_in_flight(batch_api)
    metrics = client.get("/metrics", REMOTE_ADDR="127.0.0.1").content.decode()
    assert 'annotation_batches_in_flight{annotator="1",domain="urgency"} 1.0' in metrics
    assert 'annotation_batch_requests_in_flight{annotator="1",domain="urgency"} 3.0' in metrics
    assert 'annotation_batch_requests_pending{annotator="1",domain="urgency"} 2.0' in metrics
    assert 'annotation_batch_oldest_age_seconds{annotator="1",domain="urgency"}' in metrics


@pytest.mark.django_db
def test_samples_waiting_in_batches_are_not_mistaken_for_lost_work(catalogue, batch_api):
    one_batch_in_flight(batch_api)  # 3 in a batch in flight, 2 pending; the queue is empty
    Worker.objects.filter(pk=worker(1, "urgency").pk).update(desired_state=Worker.Desired.RUNNING)
    running = list(Worker.objects.select_related("annotator", "domain").filter(pk=worker(1, "urgency").pk))
    looks = LostWork()
    assert looks.hand_out_again(running) == {} and looks.hand_out_again(running) == {}
    BatchRequest.objects.all().delete()  # as if the messages had been lost before their record
    assert looks.hand_out_again(running) == {}  # a shortfall seen once
    assert looks.hand_out_again(running) == {"annotator_1_urgency": 5}  # and twice: handed out again


@pytest.mark.django_db
def test_the_worker_page_shows_its_batches_in_flight_and_what_waits(catalogue, batch_api, admin_client):
    one_batch_in_flight(batch_api)
    html = admin_client.get("/dashboard/workers/annotator_1_urgency/").content.decode()
    assert "1 in flight (3 requests, the oldest submitted" in html and "2 waiting for a batch" in html
    assert "Batches" not in admin_client.get("/dashboard/workers/annotator_2_urgency/").content.decode()


@pytest.mark.django_db
def test_the_worker_api_shows_its_batches(catalogue, batch_api, admin_client):
    one_batch_in_flight(batch_api)
    batches = admin_client.get("/api/v1/workers/annotator_1_urgency").json()["batches"]
    assert (batches["in_flight"], batches["requests"], batches["pending"]) == (1, 3, 2)
    assert batches["oldest_age"] >= 0
    assert admin_client.get("/api/v1/workers/annotator_2_urgency").json()["batches"] is None


@pytest.mark.django_db
@pytest.mark.parametrize("protocol", [Annotator.BatchProtocol.OPENAI, Annotator.BatchProtocol.ANTHROPIC])
def test_staff_may_cancel_batches_in_flight_whose_requests_go_back_to_pending(catalogue, batch_api, protocol):
    batch = one_batch_in_flight(batch_api, 3, protocol)
    Worker.objects.filter(pk=worker(1, "urgency").pk).update(desired_state=Worker.Desired.PAUSED)
    assert batch_mode.cancel_batches([Batch.objects.get(pk=batch.pk)], actor="staff") == 1
    assert AuditLog.objects.get(action="cancel_batches").detail["cancelled"] == [batch.ref]
    run_batches()
    assert Batch.objects.get(pk=batch.pk).state == "ended" and not Outcome.objects.exists()
    assert BatchRequest.objects.filter(batch=None).count() == 3  # back to pending; paused: not submitted again
    assert batch_api.creates == 1
    assert batch_mode.cancel_batches([Batch.objects.get(pk=batch.pk)], actor="staff") == 0  # ended already


@pytest.mark.django_db
def test_the_admin_cancels_selected_batches_through_the_service(catalogue, batch_api, admin_client):
    batch = one_batch_in_flight(batch_api, 3)
    page = admin_client.post("/admin/workers_app/batch/", {"action": "cancel_at_provider",
                                                           "_selected_action": [batch.pk]}, follow=True)
    assert "accepted 1 of 1 cancellation" in page.content.decode()
    assert batch_api.batches[Batch.objects.get().provider_id].status == "cancelled"


@pytest.mark.django_db
def test_the_dashboard_cell_shows_the_batches_in_flight(catalogue, batch_api, admin_client):
    one_batch_in_flight(batch_api)
    cells = admin_client.get("/dashboard/live").json()["cells"]
    assert cells["annotator_1_urgency"]["display"]["batches"].startswith("1 batch in flight (3 requests, oldest 0 min)")
    assert cells["annotator_1_urgency"]["display"]["batches"].endswith(", 2 waiting")
    assert cells["annotator_2_urgency"]["display"]["batches"] == ""
