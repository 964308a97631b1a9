"""Prices by date, the cost of every call, totals, and budgets that pause an annotator's workers (fake LLM on
loopback; real worker processes where the behaviour is theirs)."""

from __future__ import annotations

import time
from datetime import date, timedelta
from decimal import Decimal

import pytest
from django.contrib.auth.models import Permission
from django.forms.models import model_to_dict
from django.utils import timezone

from audit.models import AuditLog
from tests.fake_llm import Reply
from tests.helpers import make_samples, wait_until
from tests.worker_processes import assert_all_ok
from workers_app.catalogue.forms import AnnotatorKeyForm
from workers_app.engine.annotate import RetryLater, annotate_sample
from workers_app.engine.budget import BudgetReached, spent, spent_key
from workers_app.engine.cost import cost_of, cost_totals, forget_cached_prices, price_on
from workers_app.engine.keys import WorkerKey
from workers_app.models import Alert, Annotator, AnnotatorPrice, MalformedAttempt, Outcome, Worker, WorkerEvent
from workers_app.monitoring.budgets import budget_sweep
from workers_app.redis_client import get_redis

URGENCY = WorkerKey(1, "urgency")
# The fake LLM reports 100 prompt and 12 completion tokens: at these prices one call costs 0.016.
INPUT, OUTPUT = Decimal("0.1"), Decimal("0.5")
PER_CALL = Decimal("0.016")


@pytest.fixture(autouse=True)
def fresh_prices():
    forget_cached_prices()


def price(annotator: Annotator, valid_from: date | None = None, inp: Decimal = INPUT, out: Decimal = OUTPUT,
          currency: str = "USD") -> AnnotatorPrice:
    forget_cached_prices()
    return AnnotatorPrice.objects.create(annotator=annotator, valid_from=valid_from or timezone.localdate(),
                                         input_per_1k=inp, output_per_1k=out, currency=currency)


def answer_for(body: dict) -> str:
    """A valid answer for the urgency and the intensity prompt."""
    return "<<INT-1>>" if "INT-" in str(body.get("messages")) else "<<LEVEL_1>>"


# -- prices and cost


@pytest.mark.django_db
def test_a_call_is_charged_at_the_price_valid_on_its_day(http_annotator, fake_llm):
    today = timezone.localdate()
    price(http_annotator, today - timedelta(days=30), Decimal("0.5"), Decimal("1.0"))
    price(http_annotator, today, INPUT, OUTPUT)
    price(http_annotator, today + timedelta(days=1), Decimal(9), Decimal(9))
    [sample] = make_samples(1)
    annotate_sample(sample, URGENCY, worker="w")
    assert Outcome.objects.get().cost == PER_CALL
    assert price_on(http_annotator.pk, today - timedelta(days=1)).input_per_1k == Decimal("0.5")
    assert price_on(http_annotator.pk, today - timedelta(days=31)) is None


@pytest.mark.django_db
def test_cost_is_an_exact_decimal_of_tokens_over_a_thousand_times_the_price(http_annotator):
    tiny = AnnotatorPrice(input_per_1k=Decimal("0.000001"), output_per_1k=Decimal("0.000003"))
    cost = cost_of(tiny, 100, 12)
    assert isinstance(cost, Decimal) and cost == Decimal("0.000000136")
    assert cost_of(tiny, 3, 0) == Decimal("0.000000003")


@pytest.mark.django_db
def test_cost_is_null_without_a_price_or_without_token_counts(http_annotator, fake_llm):
    [first, second] = make_samples(2, vary=True)
    annotate_sample(first, URGENCY, worker="w")
    assert Outcome.objects.get(sample_id=first).cost is None  # no price yet
    builtin = Annotator.objects.get(number=2)
    price(builtin)
    annotate_sample(second, WorkerKey(2, "urgency"), worker="w")
    outcome = Outcome.objects.get(sample_id=second, annotator=builtin)
    assert outcome.prompt_tokens is None and outcome.cost is None
    assert cost_of(AnnotatorPrice(input_per_1k=INPUT, output_per_1k=OUTPUT), 100, None) is None


@pytest.mark.django_db
def test_a_price_edit_never_changes_a_stored_cost(http_annotator, fake_llm):
    current = price(http_annotator)
    [first, second] = make_samples(2, vary=True)
    annotate_sample(first, URGENCY, worker="w")
    current.input_per_1k, current.output_per_1k = Decimal(1), Decimal(1)
    current.save()
    forget_cached_prices()
    annotate_sample(second, URGENCY, worker="w")
    assert Outcome.objects.get(sample_id=first).cost == PER_CALL
    assert Outcome.objects.get(sample_id=second).cost == Decimal("0.112")


@pytest.mark.django_db
def test_an_outcome_costs_every_call_it_took_and_each_malformed_attempt_its_own(http_annotator, fake_llm):
    price(http_annotator)
    fake_llm.script.extend([Reply(content="no marker"), Reply(content="<<LEVEL_9>>")])
    [sample] = make_samples(1)
    annotate_sample(sample, URGENCY, worker="w")
    assert Outcome.objects.get().cost == 3 * PER_CALL
    assert list(MalformedAttempt.objects.values_list("cost", flat=True)) == [PER_CALL, PER_CALL]


@pytest.mark.django_db
def test_cost_totals_add_up_per_annotator_and_domain_in_its_currency(http_annotator, fake_llm):
    price(http_annotator, currency="EUR")
    fake_llm.content_for = answer_for
    samples = make_samples(3, vary=True)
    for sample in samples:
        annotate_sample(sample, URGENCY, worker="w")
    annotate_sample(samples[0], WorkerKey(1, "intensity"), worker="w")
    totals = {(t.annotator, t.domain): t for t in cost_totals()}
    urgency = totals[(1, "urgency")]
    assert (urgency.outcomes, urgency.priced, urgency.cost, urgency.currency) == (3, 3, 3 * PER_CALL, "EUR")
    assert totals[(1, "intensity")].cost == PER_CALL
    assert [t.domain for t in cost_totals(annotator=1, domain="intensity")] == ["intensity"]


@pytest.mark.django_db
@pytest.mark.parametrize(("field", "value", "message"), [
    ("currency", "usd", "three-letter ISO 4217 currency code"),
    ("currency", "US$", "three-letter ISO 4217 currency code"),
    ("input_per_1k", "-1", "greater than or equal to 0"),
    ("output_per_1k", "NaN", "Enter a number"),
    ("output_per_1k", "1e40", "no more than"),
])
def test_a_bad_price_is_refused(http_annotator, field, value, message):
    from django import forms

    form_class = forms.modelform_factory(AnnotatorPrice, fields="__all__")
    data = {"annotator": http_annotator.pk, "valid_from": "2026-01-01", "input_per_1k": "0.01",
            "output_per_1k": "0.02", "currency": "USD", field: value}
    form = form_class(data=data)
    assert not form.is_valid() and message in " ".join(form.errors[field])


@pytest.mark.django_db
def test_an_annotator_keeps_one_currency(http_annotator):
    from django.core.exceptions import ValidationError

    price(http_annotator, date(2026, 1, 1))
    second = AnnotatorPrice(annotator=http_annotator, valid_from=date(2026, 2, 1), input_per_1k=INPUT,
                            output_per_1k=OUTPUT, currency="EUR")
    with pytest.raises(ValidationError, match="one currency per annotator"):
        second.full_clean()


# -- budgets, in one process


@pytest.mark.django_db
@pytest.mark.parametrize(("value", "message"), [
    ("-5", "The budget cannot be negative."),
    ("NaN", "Enter a number."),
    ("Infinity", "Enter a number."),
    ("1e30", "Ensure that there are no more than 14 digits in total."),
    ("9999999999", "The budget can be at most 1,000,000,000."),
    ("1.23456", "no more than 4 decimal places"),
    ("twelve", "Enter a number."),
])
def test_a_bad_budget_is_refused_by_the_form_with_a_clear_message(http_annotator, value, message):
    data = {**model_to_dict(http_annotator), "budget": value}
    form = AnnotatorKeyForm(data=data, instance=http_annotator)
    assert not form.is_valid()
    assert message in " ".join(form.errors["budget"])


@pytest.mark.django_db
def test_a_good_budget_is_taken(http_annotator):
    form = AnnotatorKeyForm(data={**model_to_dict(http_annotator), "budget": "12.50"}, instance=http_annotator)
    assert form.is_valid(), form.errors
    assert form.save().budget == Decimal("12.50")


def wanted_running(annotator: Annotator) -> list[Worker]:
    """Its workers' rows as staff launched them (no processes: nothing to broadcast to)."""
    from workers_app.fleet.rows import ensure_worker_rows

    ensure_worker_rows()
    Worker.objects.filter(annotator=annotator).update(desired_state=Worker.Desired.RUNNING)
    return list(Worker.objects.filter(annotator=annotator))


@pytest.mark.django_db
def test_the_budget_stops_calls_before_the_next_request_and_records_the_pause_once(http_annotator, fake_llm):
    price(http_annotator)
    Annotator.objects.filter(pk=http_annotator.pk).update(budget=3 * PER_CALL)
    workers = wanted_running(http_annotator)
    samples = make_samples(5, vary=True)
    for sample in samples[:3]:
        annotate_sample(sample, URGENCY, worker="w")
    for sample in samples[3:]:
        with pytest.raises(RetryLater) as raised:
            annotate_sample(sample, URGENCY, worker="w")
        assert isinstance(raised.value.__cause__, BudgetReached)
    assert len(fake_llm.requests) == 3 and Outcome.objects.count() == 3
    assert set(Worker.objects.filter(annotator=http_annotator).values_list("desired_state", flat=True)) == {"paused"}
    events = WorkerEvent.objects.filter(reason__contains="spent 0.048 of 0.048")
    assert events.count() == len(workers)
    assert AuditLog.objects.filter(action="budget_reached").count() == 1


@pytest.mark.django_db
def test_the_spend_is_rebuilt_from_the_store_when_redis_lost_it(http_annotator, fake_llm):
    price(http_annotator)
    for sample in make_samples(2, vary=True):
        annotate_sample(sample, URGENCY, worker="w")
    assert spent(http_annotator) == 2 * PER_CALL
    get_redis().delete(spent_key(http_annotator.number))
    assert spent(http_annotator) == 2 * PER_CALL
    assert get_redis().get(spent_key(http_annotator.number)) == str(int(2 * PER_CALL * 10**9))


@pytest.mark.django_db(transaction=True)
def test_a_reset_starts_the_spend_over_with_the_outcomes_it_deletes(http_annotator, fake_llm):
    from admin_ops.services.reset import reset_data

    price(http_annotator)
    Annotator.objects.filter(pk=http_annotator.pk).update(budget=PER_CALL)
    [first, second] = make_samples(2, vary=True)
    annotate_sample(first, URGENCY, worker="w")
    assert spent(http_annotator) == PER_CALL
    reset_data(actor="test", annotator=1, backup=False)
    assert spent(http_annotator) == 0
    annotate_sample(second, URGENCY, worker="w")
    assert Outcome.objects.get().sample_id == second


@pytest.mark.django_db
def test_the_sweep_alerts_once_and_resolves_the_alert_when_the_budget_is_raised(http_annotator, fake_llm):
    price(http_annotator)
    wanted_running(http_annotator)
    for sample in make_samples(2, vary=True):
        annotate_sample(sample, URGENCY, worker="w")
    Annotator.objects.filter(pk=http_annotator.pk).update(budget=PER_CALL)
    budget_sweep()
    budget_sweep()
    [alert] = Alert.objects.filter(kind="budget")
    assert alert.key == "budget:1" and "reached its budget" in alert.message and alert.resolved_at is None
    assert set(Worker.objects.filter(annotator=http_annotator).values_list("desired_state", flat=True)) == {"paused"}
    Annotator.objects.filter(pk=http_annotator.pk).update(budget=10 * PER_CALL)
    budget_sweep()
    alert.refresh_from_db()
    assert alert.resolved_at is not None and Alert.objects.filter(kind="budget").count() == 1


# -- budgets, with real worker processes


@pytest.fixture
def four_thread_agent(catalogue):
    from tests.worker_processes import running_agent

    with running_agent(WORKER_THREADS="4", WORKER_MAX_INFLIGHT="4") as process:
        yield process


@pytest.mark.django_db(transaction=True)
def test_a_budget_of_n_calls_stops_within_the_threads_in_flight_alerts_once_and_resumes(
        http_annotator, fake_llm, four_thread_agent):
    from workers_app.engine.queues import populate_queues
    from workers_app.fleet.rows import select_workers
    from workers_app.fleet.services import launch_workers, resume_workers

    calls, threads_in_flight, per_domain = 20, 2 * 4, 40
    fake_llm.default = Reply(delay=0.05)
    fake_llm.content_for = answer_for
    price(http_annotator)
    # A generous timeout: on a loaded machine a 1 s timeout retried a request, and "nothing asked twice" is the point
    Annotator.objects.filter(pk=http_annotator.pk).update(budget=calls * PER_CALL, timeout_seconds=10)
    make_samples(per_domain, vary=True)
    workers = select_workers(1, "urgency") + select_workers(1, "intensity")
    results = launch_workers(workers, actor="test")
    assert_all_ok(results, four_thread_agent)
    for worker in workers:
        populate_queues(1, worker.domain.slug)

    def paused() -> bool:
        return all(w.desired_state == "paused" and w.observed_state == "paused" for w in
                   Worker.objects.filter(pk__in=[w.pk for w in workers]))

    def settled() -> bool:
        budget_sweep()
        return paused()

    wait_until(settled, timeout=60, what="the workers to pause on their budget")
    time.sleep(3)  # no late calls
    asked = len(fake_llm.requests)
    assert calls <= asked <= calls + threads_in_flight, asked
    assert Outcome.objects.count() < 2 * per_domain
    for worker in workers:
        assert worker.events.filter(reason__startswith="budget: annotator 1").count() == 1
    budget_sweep()
    assert Alert.objects.filter(kind="budget").count() == 1

    Annotator.objects.filter(pk=http_annotator.pk).update(budget=1000 * PER_CALL)
    assert all(r.ok for r in resume_workers(list(Worker.objects.filter(pk__in=[w.pk for w in workers])),
                                            actor="test"))
    # At once: the workers' annotator rows may be seconds old, the raised budget must count all the same.
    wait_until(lambda: Outcome.objects.count() == 2 * per_domain, timeout=90, what="the run to finish")
    budget_sweep()
    assert Alert.objects.get(kind="budget").resolved_at is not None
    assert len(fake_llm.requests) == 2 * per_domain  # nothing asked twice


# -- the API


@pytest.mark.django_db
def test_the_api_gives_each_outcome_its_cost_and_the_totals_per_annotator_and_domain(http_annotator, fake_llm,
                                                                                     staff, django_user_model):
    from tests.api.conftest import TokenClient, make_token

    price(http_annotator)
    [sample] = make_samples(1)
    annotate_sample(sample, URGENCY, worker="w")
    client = TokenClient(make_token(staff))
    [outcome] = client.get("/api/v1/outcomes").json()["results"]
    assert (outcome["cost"], outcome["cached"], outcome["cached_latency_ms"]) == ("0.016000000", False, None)
    totals = client.get("/api/v1/costs", {"annotator": 1}).json()
    assert totals == [{"annotator": 1, "domain": "urgency", "outcomes": 1, "priced": 1, "cost": "0.016000000",
                       "cached": 0, "hit_rate": 0.0, "saved": "0.000000000", "currency": "USD",
                       "cache_read_tokens": 0, "cache_write_tokens": 0}]
    assert client.get("/api/v1/costs", {"annotator": 2}).json() == []
    assert client.get("/api/v1/costs", {"annotator": "x"}).status_code == 422
    assert client.get("/api/v1/costs", {"domain": "../etc"}).status_code == 422
    nobody = django_user_model.objects.create_user("nobody", password="pw-for-tests", is_staff=True)
    nobody.user_permissions.add(Permission.objects.get(codename="view_worker"))
    refused = TokenClient(make_token(nobody)).get("/api/v1/costs")
    assert refused.status_code == 403 and "workers_app.view_sample" in refused.json()["detail"]
    assert TokenClient(None).get("/api/v1/costs").status_code in (401, 403)
