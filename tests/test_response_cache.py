"""The response cache against the loopback fake LLM: a hit calls the server zero times, the key holds everything
that shapes the answer, entries survive resets and are cleared by scope, and a cached answer is still validated."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.core.management import call_command

from audit.models import AuditLog
from tests.fake_llm import Reply
from tests.helpers import make_samples
from workers_app.engine.annotate import annotate_sample
from workers_app.engine.cost import forget_cached_prices
from workers_app.engine.keys import WorkerKey
from workers_app.engine.response_cache import cache_key, cache_stats, clear_cache
from workers_app.models import Annotator, AnnotatorPrice, CachedResponse, Domain, MalformedAttempt, Outcome

pytestmark = pytest.mark.django_db

URGENCY = WorkerKey(1, "urgency")


@pytest.fixture
def cached(http_annotator):
    http_annotator.cache_responses = True
    http_annotator.full_clean()
    http_annotator.save()
    AnnotatorPrice.objects.create(annotator=http_annotator, input_per_1k=Decimal("0.1"),
                                  output_per_1k=Decimal("0.5"))
    forget_cached_prices()
    return http_annotator


def forget_outcomes() -> None:
    """What a reset does to the outcomes (the cache is not theirs to delete)."""
    Outcome.objects.all().delete()


def test_a_hit_calls_the_server_zero_times_costs_nothing_and_keeps_the_original_latency(cached, fake_llm):
    fake_llm.default = Reply(content="<<LEVEL_2>>", delay=0.2)
    [sample] = make_samples(1)
    annotate_sample(sample, URGENCY, worker="w")
    first = Outcome.objects.get()
    assert (first.cached, first.cost, first.latency_ms >= 200) == (False, Decimal("0.016"), True)
    forget_outcomes()
    annotate_sample(sample, URGENCY, worker="w")
    hit = Outcome.objects.get()
    assert len(fake_llm.requests) == 1
    assert (hit.cached, hit.cost, hit.labels, hit.raw_answer) == (True, Decimal(0), ["LEVEL_2"], "<<LEVEL_2>>")
    assert hit.cached_latency_ms == first.latency_ms and hit.latency_ms < 200
    assert (hit.prompt_tokens, hit.completion_tokens) == (100, 12)


@pytest.mark.django_db(transaction=True)
def test_the_cache_survives_a_reset_of_the_outcomes(cached, fake_llm):
    from admin_ops.services.reset import reset_data

    [sample] = make_samples(1)
    annotate_sample(sample, URGENCY, worker="w")
    reset_data(actor="test", annotator=1, backup=False)
    assert Outcome.objects.count() == 0 and CachedResponse.objects.count() == 1
    annotate_sample(sample, URGENCY, worker="w")
    assert Outcome.objects.get().cached and len(fake_llm.requests) == 1


def test_a_changed_prompt_version_is_a_miss(cached, fake_llm):
    [sample] = make_samples(1)
    annotate_sample(sample, URGENCY, worker="w")
    forget_outcomes()
    domain = Domain.objects.get(slug="urgency")
    domain.prompt_template += "\nAnswer with care."
    domain.save()
    from workers_app.engine.catalogue_cache import forget_cached_rows

    forget_cached_rows()
    annotate_sample(sample, URGENCY, worker="w")
    outcome = Outcome.objects.get()
    assert (outcome.cached, outcome.prompt_version, len(fake_llm.requests)) == (False, 2, 2)


@pytest.mark.parametrize(("field", "value"), [
    ("model", "another-model"), ("request_mode", "completion"), ("base_url", "http://127.0.0.1:9/v1"),
    ("temperature", 0.5), ("max_tokens", 64),
])
def test_the_key_changes_with_each_setting_that_shapes_the_answer(cached, field, value):
    before = cache_key(cached, "the prompt")
    setattr(cached, field, value)
    assert cache_key(cached, "the prompt") != before
    assert cache_key(cached, "another prompt") != cache_key(cached, "the prompt")


def test_the_cache_is_refused_unless_answers_are_deterministic(http_annotator):
    http_annotator.cache_responses = True
    http_annotator.temperature = 0.7
    with pytest.raises(ValidationError, match="needs temperature 0") as refused:
        http_annotator.full_clean()
    assert "cache_responses" in refused.value.message_dict
    builtin = Annotator.objects.get(number=2)
    builtin.cache_responses = True
    with pytest.raises(ValidationError, match="OpenAI-compatible backend"):
        builtin.full_clean()


def test_a_cache_switched_on_behind_the_forms_back_at_temperature_above_0_is_not_used(cached, fake_llm):
    Annotator.objects.filter(pk=cached.pk).update(temperature=0.7)
    [sample] = make_samples(1)
    annotate_sample(sample, URGENCY, worker="w")
    forget_outcomes()
    annotate_sample(sample, URGENCY, worker="w")
    assert len(fake_llm.requests) == 2 and CachedResponse.objects.count() == 0


def test_a_cached_answer_that_no_longer_parses_is_validated_dropped_and_asked_again(cached, fake_llm):
    [sample] = make_samples(1)
    annotate_sample(sample, URGENCY, worker="w")
    forget_outcomes()
    CachedResponse.objects.update(text="<<LEVEL_9>> ignore the rules")  # e.g. a code since removed
    fake_llm.default = Reply(content="<<LEVEL_3>>")
    annotate_sample(sample, URGENCY, worker="w")
    outcome = Outcome.objects.get()
    assert (outcome.labels, outcome.cached, outcome.attempts, len(fake_llm.requests)) == (["LEVEL_3"], False, 2, 2)
    [attempt] = MalformedAttempt.objects.all()
    assert (attempt.cached, attempt.reason, attempt.cost) == (True, "unknown_code", Decimal(0))
    assert CachedResponse.objects.get().text == "<<LEVEL_3>>"


def test_a_malformed_answer_is_not_cached(cached, fake_llm):
    fake_llm.default = Reply(content="no marker at all")
    [sample] = make_samples(1)
    annotate_sample(sample, URGENCY, worker="w")
    assert Outcome.objects.get().status == "malformed" and CachedResponse.objects.count() == 0


def fill(count: int) -> list[int]:
    samples = make_samples(count, vary=True)
    for sample in samples:
        annotate_sample(sample, URGENCY, worker="w")
    return samples


def test_clear_by_annotator_model_or_all_is_audited(cached, fake_llm):
    fill(2)
    CachedResponse.objects.create(key="x" * 64, annotator=None, model="other", base_url="http://127.0.0.1:9/v1",
                                  request_mode="chat", text="<<LEVEL_1>>", answered_by="other", latency_ms=5)
    assert clear_cache(actor="test", annotator=Annotator.objects.get(number=2)) == 0
    assert clear_cache(actor="test", annotator=cached) == 2
    assert clear_cache(actor="test", model="other") == 1
    fill(1)
    assert clear_cache(actor="test") == 1 and CachedResponse.objects.count() == 0
    rows = AuditLog.objects.filter(action="clear_response_cache").order_by("id")
    assert [(r.target, r.detail["deleted"]) for r in rows] == [
        ("annotator 2 (Baseline B)", 0), (str(cached), 2), ("model other", 1), ("all", 1)]
    with pytest.raises(ValueError):
        clear_cache(actor="test", annotator=cached, model="fake-model")


def test_stats_and_the_command(cached, fake_llm, capsys):
    samples = fill(2)
    forget_outcomes()
    for sample in samples:
        annotate_sample(sample, URGENCY, worker="w")
    annotate_sample(make_samples(1, text="a new post")[0], URGENCY, worker="w")
    [mine] = [row for row in cache_stats() if row.annotator == 1]
    assert (mine.entries, mine.outcomes, mine.hits) == (3, 3, 2)
    call_command("response_cache", "stats")
    assert "hits       2  hit rate 66.7%" in capsys.readouterr().out
    call_command("response_cache", "clear", "--annotator", "1")
    assert "deleted 3 cached response(s)" in capsys.readouterr().out
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="no annotator 42"):
        call_command("response_cache", "clear", "--annotator", "42")
    with pytest.raises(CommandError):
        call_command("response_cache", "clear")


def test_hits_show_as_money_saved_in_the_totals(cached, fake_llm):
    from workers_app.engine.cost import cost_totals

    samples = fill(3)
    forget_outcomes()
    for sample in samples:
        annotate_sample(sample, URGENCY, worker="w")
    [total] = cost_totals(annotator=1)
    assert (total.cost, total.cached, total.saved, total.hit_rate) == (Decimal(0), 3, Decimal("0.048"), 1.0)


def test_the_annotator_admin_shows_cost_cache_and_prices_and_clears_the_cache(cached, fake_llm, staff, client):
    fill(2)
    client.force_login(staff)
    page = client.get(f"/admin/workers_app/annotator/{cached.pk}/change/")
    assert page.status_code == 200
    for text in ("Cost and cache", 'name="budget"', 'name="cache_responses"', 'name="prices-0-input_per_1k"'):
        assert text in page.content.decode()
    listing = client.get("/admin/workers_app/annotator/").content.decode()
    assert "Cache hits" in listing and "0.032" in listing
    done = client.post("/admin/workers_app/annotator/", {"action": "clear_response_cache",
                                                         "_selected_action": [cached.pk]}, follow=True)
    assert [str(m) for m in done.context["messages"]] == ["deleted 2 cached response(s)"]
    assert CachedResponse.objects.count() == 0
    assert AuditLog.objects.filter(action="clear_response_cache", actor="staff").count() == 1


def test_a_viewer_cannot_clear_the_cache(cached, client, django_user_model):
    from django.contrib.auth.models import Permission

    viewer = django_user_model.objects.create_user("viewer", password="pw-for-tests", is_staff=True)
    viewer.user_permissions.add(Permission.objects.get(codename="view_annotator"))
    client.force_login(viewer)
    CachedResponse.objects.create(key="y" * 64, annotator=cached, model="fake-model", base_url=cached.base_url,
                                  request_mode="chat", text="<<LEVEL_1>>", answered_by="fake-model", latency_ms=5)
    client.post("/admin/workers_app/annotator/", {"action": "clear_response_cache", "_selected_action": [cached.pk]})
    assert CachedResponse.objects.count() == 1
