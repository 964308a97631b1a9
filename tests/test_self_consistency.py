"""Self-consistency: an annotator that asks k answers per item stores the most common label, with the share of the k
answers that gave it as its confidence where the server sends no logprobs; through the real HTTP client against the
loopback fake LLM."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError

from tests.fake_llm import Reply, chat_logprobs
from tests.helpers import make_samples
from workers_app.engine.annotate import Result, annotate_sample
from workers_app.engine.catalogue_cache import forget_cached_rows
from workers_app.engine.cost import forget_cached_prices
from workers_app.engine.keys import WorkerKey
from workers_app.models import Annotator, AnnotatorPrice, MalformedAttempt, Outcome
from workers_app.runs.services import RunPlan, create_run

pytestmark = pytest.mark.django_db

URGENCY = WorkerKey(1, "urgency")


def answers_per_item(k: int, **changes) -> None:
    Annotator.objects.filter(number=1).update(answers_per_item=k, temperature=0.7, **changes)
    forget_cached_rows()


def answering(fake_llm, *contents: str, **reply) -> None:
    fake_llm.script.extend(Reply(content=content, usage={"prompt_tokens": 100, "completion_tokens": 10}, **reply)
                           for content in contents)


def test_three_answers_store_the_majority_with_its_share_as_confidence(http_annotator, fake_llm):
    answers_per_item(3)
    answering(fake_llm, "<<LEVEL_2>>", "<<LEVEL_1>>", "Final answer: <<LEVEL_2>>")
    assert annotate_sample(make_samples(1)[0], URGENCY, worker="w") is Result.STORED
    assert len(fake_llm.requests) == 3
    assert all(request["body"]["temperature"] == 0.7 for request in fake_llm.requests)
    outcome = Outcome.objects.get()
    assert (outcome.labels, outcome.raw_answer) == (["LEVEL_2"], "<<LEVEL_2>>")  # the first answer that gave it
    assert outcome.confidence == pytest.approx(2 / 3, abs=1e-6)
    assert (outcome.attempts, outcome.prompt_tokens, outcome.completion_tokens) == (3, 300, 30)
    assert outcome.parameters["answers_per_item"] == 3
    assert outcome.parameters["agreement"] == pytest.approx(2 / 3, abs=1e-6)
    assert outcome.parameters["votes"] == [[["LEVEL_2"], 2], [["LEVEL_1"], 1]]


def test_every_answer_is_charged_to_the_outcome(http_annotator, fake_llm):
    AnnotatorPrice.objects.create(annotator=http_annotator, input_per_1k=Decimal("1.00"),
                                  output_per_1k=Decimal("2.00"), currency="EUR")
    forget_cached_prices()
    answers_per_item(3)
    answering(fake_llm, "<<LEVEL_1>>", "<<LEVEL_1>>", "<<LEVEL_1>>")
    annotate_sample(make_samples(1)[0], URGENCY, worker="w")
    outcome = Outcome.objects.get()
    assert outcome.cost == Decimal("0.36")  # 3 x (100 x 1 + 10 x 2) / 1,000
    assert outcome.confidence == 1.0


def test_the_chosen_answers_logprob_is_its_confidence_where_the_server_sends_one(http_annotator, fake_llm):
    answers_per_item(3, request_logprobs=True)
    sure = chat_logprobs([("<<", 0.99), ("LEVEL_3", 0.9), (">>", 0.99)])
    answering(fake_llm, "<<LEVEL_3>>", logprobs=sure)
    answering(fake_llm, "<<LEVEL_0>>", "<<LEVEL_3>>")
    annotate_sample(make_samples(1)[0], URGENCY, worker="w")
    outcome = Outcome.objects.get()
    assert outcome.labels == ["LEVEL_3"] and outcome.confidence == pytest.approx(0.9)
    assert outcome.parameters["agreement"] == pytest.approx(2 / 3, abs=1e-6)


def test_a_malformed_answer_agrees_with_none_and_a_tie_goes_to_the_first_answer(http_annotator, fake_llm):
    answers_per_item(3, max_retries=0)
    answering(fake_llm, "<<LEVEL_3>>", "I cannot tell", "<<LEVEL_1>>")
    assert annotate_sample(make_samples(1)[0], URGENCY, worker="w") is Result.STORED
    outcome = Outcome.objects.get()
    assert outcome.labels == ["LEVEL_3"] and outcome.confidence == pytest.approx(1 / 3, abs=1e-6)
    assert MalformedAttempt.objects.count() == 1  # the malformed answer is logged as any is


def test_no_well_formed_answer_stores_a_malformed_outcome_without_confidence(http_annotator, fake_llm):
    answers_per_item(2, max_retries=0)
    answering(fake_llm, "no marker", "still none")
    assert annotate_sample(make_samples(1)[0], URGENCY, worker="w") is Result.MALFORMED
    outcome = Outcome.objects.get()
    assert (outcome.status, outcome.confidence, outcome.raw_answer) == ("malformed", None, "still none")
    assert outcome.parameters["agreement"] == 0.0 and outcome.parameters["votes"] == []


def test_one_answer_per_item_asks_once_and_keeps_the_outcome_as_it_was(http_annotator, fake_llm):
    answering(fake_llm, "<<LEVEL_2>>")
    annotate_sample(make_samples(1)[0], URGENCY, worker="w")
    outcome = Outcome.objects.get()
    assert len(fake_llm.requests) == 1
    assert outcome.confidence is None and "answers_per_item" not in outcome.parameters


@pytest.mark.parametrize(("changes", "message"), [
    ({"temperature": 0.0}, "need a temperature above 0"),
    ({"backend": "builtin", "base_url": ""}, "for the OpenAI-compatible backend"),
    ({"answers_per_item": 0}, "greater than or equal to 1"),
    ({"answers_per_item": 10}, "less than or equal to 9"),
])
def test_answers_per_item_that_cannot_work_are_refused_by_the_model(http_annotator, changes, message):
    values = {"answers_per_item": 3, "temperature": 0.7, **changes}
    for name, value in values.items():
        setattr(http_annotator, name, value)
    with pytest.raises(ValidationError) as refused:
        http_annotator.full_clean()
    assert message in " ".join(refused.value.message_dict["answers_per_item"])


def test_a_run_pins_its_answers_per_item_as_it_pins_the_model(http_annotator, fake_llm):
    sample = make_samples(1)[0]
    answers_per_item(3)
    run = create_run(RunPlan(name="pinned", annotators=[1], domains=["urgency"]), actor="test")
    answers_per_item(1)  # changed after the run was made: the run keeps asking three
    answering(fake_llm, "<<LEVEL_1>>", "<<LEVEL_1>>", "<<LEVEL_0>>")
    annotate_sample(sample, URGENCY, worker="w", run_id=run.pk)
    assert len(fake_llm.requests) == 3
    assert Outcome.objects.get(run=run).parameters["votes"] == [[["LEVEL_1"], 2], [["LEVEL_0"], 1]]
