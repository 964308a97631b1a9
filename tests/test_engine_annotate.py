"""The annotation step against a real HTTP server on loopback: retries, parsing, storing, errors."""

from __future__ import annotations

import time

import pytest

from tests.fake_llm import Reply
from tests.helpers import make_samples
from workers_app.engine.annotate import Result, RetryLater, annotate_sample
from workers_app.engine.keys import WorkerKey
from workers_app.models import Annotator, MalformedAttempt, Outcome

pytestmark = pytest.mark.django_db

URGENCY = WorkerKey(1, "urgency")


def test_it_stores_a_parsed_answer_with_model_tokens_and_prompt_version(http_annotator, fake_llm):
    fake_llm.default = Reply(content="Clear risk cues. <<LEVEL_3>>")
    [sample] = make_samples(1)
    assert annotate_sample(sample, URGENCY, worker="w@test") is Result.STORED
    outcome = Outcome.objects.get()
    assert (outcome.status, outcome.labels, outcome.model) == ("ok", ["LEVEL_3"], "fake-model")
    assert (outcome.prompt_tokens, outcome.completion_tokens, outcome.prompt_version) == (100, 12, 1)
    assert outcome.raw_answer == "Clear risk cues. <<LEVEL_3>>" and outcome.attempts == 1
    assert "I feel anxious before exams" in fake_llm.requests[0]["body"]["messages"][0]["content"]


def test_it_does_not_call_the_model_again_for_a_stored_sample(http_annotator, fake_llm):
    [sample] = make_samples(1)
    annotate_sample(sample, URGENCY, worker="w")
    assert annotate_sample(sample, URGENCY, worker="w") is Result.ALREADY_STORED
    assert len(fake_llm.requests) == 1 and Outcome.objects.count() == 1


def test_it_honours_retry_after_and_retries_server_errors_without_counting_them_malformed(http_annotator, fake_llm):
    fake_llm.script.extend([Reply(status=429, retry_after=1), Reply(status=503)])
    [sample] = make_samples(1)
    started = time.monotonic()
    assert annotate_sample(sample, URGENCY, worker="w") is Result.STORED
    assert time.monotonic() - started >= 1.0
    assert Outcome.objects.get().attempts == 3 and MalformedAttempt.objects.count() == 0


def test_it_retries_a_timeout_as_a_transient_error(http_annotator, fake_llm):
    fake_llm.script.append(Reply(delay=1.5))
    [sample] = make_samples(1)
    assert annotate_sample(sample, URGENCY, worker="w") is Result.STORED
    assert Outcome.objects.get().attempts == 2


def test_it_asks_to_be_requeued_when_transient_errors_outlast_the_retries(http_annotator, fake_llm):
    fake_llm.default = Reply(status=500)
    [sample] = make_samples(1)
    with pytest.raises(RetryLater):
        annotate_sample(sample, URGENCY, worker="w")
    assert Outcome.objects.count() == 0 and len(fake_llm.requests) == 3


def test_it_re_asks_after_a_malformed_answer_and_logs_every_malformed_attempt(http_annotator, fake_llm):
    fake_llm.script.extend([Reply(content="<<INT-12>>"), Reply(content="I think LEVEL_2")])
    [sample] = make_samples(1)
    assert annotate_sample(sample, URGENCY, worker="w") is Result.STORED
    assert list(MalformedAttempt.objects.order_by("attempt").values_list("attempt", "reason")) == [
        (1, "unknown_code"), (2, "no_marker")]
    assert Outcome.objects.get().attempts == 3


def test_it_stores_a_malformed_outcome_with_reason_and_raw_answer_after_the_last_retry(http_annotator, fake_llm):
    fake_llm.default = Reply(content="<<LEVEL_2 or LEVEL_4>>")
    [sample] = make_samples(1)
    assert annotate_sample(sample, URGENCY, worker="w") is Result.MALFORMED
    outcome = Outcome.objects.get()
    assert (outcome.status, outcome.reason, outcome.labels) == ("malformed", "ambiguous", [])
    assert outcome.raw_answer == "<<LEVEL_2 or LEVEL_4>>" and outcome.attempts == 3
    assert MalformedAttempt.objects.count() == 3


@pytest.mark.parametrize("status", [400, 401, 403])
def test_a_permanent_error_stores_nothing_and_stops_the_annotator(http_annotator, fake_llm, status):
    fake_llm.default = Reply(status=status, error="invalid api key")
    first, second = make_samples(2)
    assert annotate_sample(first, URGENCY, worker="w") is Result.BLOCKED
    assert annotate_sample(second, URGENCY, worker="w") is Result.BLOCKED
    assert Outcome.objects.count() == 0 and len(fake_llm.requests) == 1
    assert Annotator.objects.get(number=1).backend_error == f"HTTP {status}: invalid api key"


def test_a_missing_api_key_variable_is_named_and_nothing_is_sent(http_annotator, fake_llm, monkeypatch):
    monkeypatch.delenv("LLM_KEY_FAKE_FOR_TESTS", raising=False)
    Annotator.objects.filter(number=1).update(api_key_env="LLM_KEY_FAKE_FOR_TESTS")
    [sample] = make_samples(1)
    assert annotate_sample(sample, URGENCY, worker="w") is Result.BLOCKED
    assert "LLM_KEY_FAKE_FOR_TESTS" in Annotator.objects.get(number=1).backend_error
    assert fake_llm.requests == []


def test_the_api_key_is_sent_as_a_bearer_token_and_never_stored(http_annotator, fake_llm, monkeypatch):
    monkeypatch.setenv("LLM_KEY_FAKE_FOR_TESTS", "sk-test-secret")
    Annotator.objects.filter(number=1).update(api_key_env="LLM_KEY_FAKE_FOR_TESTS")
    [sample] = make_samples(1)
    annotate_sample(sample, URGENCY, worker="w")
    assert fake_llm.requests[0]["auth"] == "Bearer sk-test-secret"
    assert "sk-test-secret" not in str(list(Outcome.objects.values()))
    assert "sk-test-secret" not in str(list(Annotator.objects.values()))


def test_the_builtin_annotator_answers_offline_in_every_domain(catalogue):
    [sample] = make_samples(1, text="I keep having panic attacks before my university exams.")
    for slug in ("urgency", "therapeutic", "intensity", "adjunct", "modality", "redressal"):
        assert annotate_sample(sample, WorkerKey(2, slug), worker="w") is Result.STORED
    assert Outcome.objects.filter(status="ok").count() == 6


def test_an_api_error_that_echoes_the_key_is_stored_without_it(http_annotator, fake_llm, monkeypatch):
    monkeypatch.setenv("LLM_KEY_FAKE_FOR_TESTS", "sk-echoed-secret")
    Annotator.objects.filter(number=1).update(api_key_env="LLM_KEY_FAKE_FOR_TESTS")
    fake_llm.default = Reply(status=401, error="Incorrect API key provided: sk-echoed-secret")
    [sample] = make_samples(1)
    annotate_sample(sample, URGENCY, worker="w")
    error = Annotator.objects.get(number=1).backend_error
    assert "sk-echoed-secret" not in error and "[the API key]" in error


def test_every_malformed_attempt_is_exported_to_csv(catalogue, tmp_path):
    import csv

    from django.core.management import call_command

    Annotator.objects.filter(number=2).update(builtin_malformed_rate=1.0, max_retries=1)
    for sample in make_samples(3, vary=True):
        annotate_sample(sample, WorkerKey(2, "urgency"), worker="w")
    call_command("export_malformed", str(tmp_path / "malformed.csv"))
    with (tmp_path / "malformed.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == MalformedAttempt.objects.count() == 6
    assert {row["reason"] for row in rows} <= {"no_marker", "unknown_code", "ambiguous", "empty_marker"}
    assert all(row["raw_answer"] for row in rows)


def test_a_sample_past_the_task_time_limit_is_requeued_and_its_calls_so_far_are_kept(http_annotator, fake_llm,
                                                                                      settings):
    """The threads pool ignores Celery's time limits: the engine's own deadline stops asking before the next call."""
    settings.TASK_SOFT_TIME_LIMIT = 1
    Annotator.objects.filter(pk=http_annotator.pk).update(max_retries=10, timeout_seconds=5.0)
    fake_llm.default = Reply(content="no marker at all", delay=0.4)
    [sample] = make_samples(1)
    started = time.monotonic()
    with pytest.raises(RetryLater) as refused:
        annotate_sample(sample, URGENCY, worker="w")
    assert "TASK_SOFT_TIME_LIMIT" in str(refused.value.__cause__ or refused.value)
    assert time.monotonic() - started < 1 + 0.4 + 1  # the deadline, the call under way, and slack
    assert Outcome.objects.count() == 0 and 2 <= MalformedAttempt.objects.count() < 10
