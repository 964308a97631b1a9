"""The chosen label's probability from the logprobs an OpenAI-compatible server sends: how it is derived (the tokens
that spell the code), how it is asked for (chat and completion mode), and that a hostile or absent logprobs field
leaves the confidence null and the answer as it was, through the real client against a loopback server."""

from __future__ import annotations

import json
import math

import pytest

from tests.fake_llm import Reply, chat_logprobs, completion_logprobs
from tests.helpers import make_samples
from workers_app.engine.annotate import Result, annotate_sample
from workers_app.engine.catalogue_cache import forget_cached_rows
from workers_app.engine.keys import WorkerKey
from workers_app.engine.logprobs import MAX_TOKENS, label_probability, token_logprobs
from workers_app.models import Annotator, Outcome

URGENCY = WorkerKey(1, "urgency")
THERAPEUTIC = WorkerKey(1, "therapeutic")


def tokens(*pairs: tuple[str, float]) -> tuple[tuple[str, float], ...]:
    return tuple((text, math.log(p)) for text, p in pairs)


# ------------------------------------------------------------------------------------------- the derivation


def test_the_probability_is_the_product_over_the_tokens_that_spell_the_code():
    answer = tokens(("Final", 0.9), (" answer", 0.8), (": <<", 0.99), ("LEVEL", 0.5), ("_3", 0.6), (">>", 0.99))
    assert label_probability(answer, ["LEVEL_3"]) == pytest.approx(0.5 * 0.6)


def test_a_token_that_carries_part_of_the_code_counts_whole():
    answer = tokens(("It is <<LEV", 0.4), ("EL_2>", 0.5), (">", 0.9))
    assert label_probability(answer, ["LEVEL_2"]) == pytest.approx(0.4 * 0.5)


def test_only_the_last_mention_counts_as_the_final_marker_comes_last():
    answer = tokens(("LEVEL_1", 0.1), (" or maybe ", 0.9), ("<<", 0.9), ("LEVEL_1", 0.7), (">>", 0.9))
    assert label_probability(answer, ["LEVEL_1"]) == pytest.approx(0.7)


def test_a_code_is_found_whole_not_inside_a_longer_code_and_in_any_case():
    answer = tokens(("<<", 0.9), ("int-1", 0.3), (">> not ", 0.9), ("INT-12", 0.01))
    assert label_probability(answer, ["INT-1"]) == pytest.approx(0.3)


def test_a_set_of_codes_multiplies_the_tokens_of_all_of_them_once_each():
    answer = tokens(("<<", 0.9), ("TA-1", 0.5), (", ", 0.9), ("TA-5", 0.4), (">>", 0.9))
    assert label_probability(answer, ["TA-1", "TA-5"]) == pytest.approx(0.2)
    assert label_probability(tokens(("<<TA-1, TA-5>>", 0.3)), ["TA-1", "TA-5"]) == pytest.approx(0.3)


@pytest.mark.parametrize(("answer", "labels"), [
    (None, ["LEVEL_1"]), ((), ["LEVEL_1"]), (tokens(("<<LEVEL_1>>", 0.5)), []),
    (tokens(("<<LEVEL_1>>", 0.5)), ["LEVEL_2"]),  # the tokens do not spell the label: no honest figure
])
def test_without_tokens_or_the_label_in_them_there_is_no_probability(answer, labels):
    assert label_probability(answer, labels) is None


def test_a_certain_answer_has_probability_one():
    assert label_probability((("<<LEVEL_0>>", 0.0),), ["LEVEL_0"]) == 1.0


# --------------------------------------------------------------------------------------- reading the reply


def test_both_shapes_are_read_into_token_and_logprob_pairs():
    pairs = [("<<", 0.9), ("LEVEL_1", 0.5)]
    assert token_logprobs({"logprobs": chat_logprobs(pairs)}, completion=False) == tokens(*pairs)
    assert token_logprobs({"logprobs": completion_logprobs(pairs)}, completion=True) == tokens(*pairs)


NAN, INF = float("nan"), float("inf")
HOSTILE_CHAT = [
    None, "logprobs", 42, [], {}, {"content": None}, {"content": "tokens"}, {"content": []},
    {"content": [None]}, {"content": [{"token": "<<LEVEL_1>>"}]},
    {"content": [{"token": "<<LEVEL_1>>", "logprob": "-0.1"}]},
    {"content": [{"token": "<<LEVEL_1>>", "logprob": NAN}]},
    {"content": [{"token": "<<LEVEL_1>>", "logprob": -INF}]},
    {"content": [{"token": "<<LEVEL_1>>", "logprob": 0.5}]},  # a probability above 1
    {"content": [{"token": "<<LEVEL_1>>", "logprob": True}]},
    {"content": [{"token": 7, "logprob": -0.1}]},
    {"content": [{"token": "<<LEVEL_1>>", "logprob": -0.1}, "junk"]},
    {"content": [{"token": "x", "logprob": -0.1}] * (MAX_TOKENS + 1)},
]
HOSTILE_COMPLETION = [
    {"tokens": ["<<LEVEL_1>>"]}, {"tokens": ["<<LEVEL_1>>"], "token_logprobs": []},
    {"tokens": ["<<", "LEVEL_1>>"], "token_logprobs": [-0.1]}, {"tokens": "<<", "token_logprobs": [-0.1]},
    {"tokens": ["<<LEVEL_1>>"], "token_logprobs": [None]},  # OpenAI sends null for a prompt's first token
    {"tokens": ["x"] * (MAX_TOKENS + 1), "token_logprobs": [-0.1] * (MAX_TOKENS + 1)},
]


@pytest.mark.parametrize("logprobs", HOSTILE_CHAT)
def test_a_hostile_chat_logprobs_field_reads_as_none(logprobs):
    assert token_logprobs({"logprobs": logprobs}, completion=False) is None


@pytest.mark.parametrize("logprobs", HOSTILE_COMPLETION)
def test_a_hostile_completion_logprobs_field_reads_as_none(logprobs):
    assert token_logprobs({"logprobs": logprobs}, completion=True) is None


# --------------------------------------------------------------------- through the client and the store

uses_db = pytest.mark.django_db


def logprobs_on(**changes) -> None:
    Annotator.objects.filter(number=1).update(request_logprobs=True, **changes)
    forget_cached_rows()


@uses_db
@pytest.mark.parametrize(("mode", "asked"), [("chat", {"logprobs": True, "top_logprobs": 5}),
                                             ("completion", {"logprobs": 5})])
def test_the_setting_asks_for_logprobs_in_each_mode_and_stores_the_labels_probability(http_annotator, fake_llm,
                                                                                    mode, asked):
    logprobs_on(request_mode=mode)
    pairs = [("Final answer: ", 0.9), ("<<", 0.95), ("LEVEL", 0.8), ("_2", 0.5), (">>", 0.99)]
    shape = completion_logprobs if mode == "completion" else chat_logprobs
    fake_llm.default = Reply(content="Final answer: <<LEVEL_2>>", logprobs=shape(pairs))
    sample = make_samples(1)[0]
    assert annotate_sample(sample, URGENCY, worker="w") is Result.STORED
    body = fake_llm.requests[-1]["body"]
    assert {name: body[name] for name in asked} == asked
    assert Outcome.objects.get().confidence == pytest.approx(0.8 * 0.5)


@uses_db
def test_without_the_setting_nothing_is_asked_and_logprobs_sent_anyway_are_ignored(http_annotator, fake_llm):
    fake_llm.default = Reply(content="<<LEVEL_2>>", logprobs=chat_logprobs([("<<LEVEL_2>>", 0.5)]))
    annotate_sample(make_samples(1)[0], URGENCY, worker="w")
    assert "logprobs" not in fake_llm.requests[-1]["body"] and "top_logprobs" not in fake_llm.requests[-1]["body"]
    assert Outcome.objects.get().confidence is None


@uses_db
def test_a_set_domain_stores_the_probability_of_spelling_all_its_codes(http_annotator, fake_llm):
    logprobs_on()
    fake_llm.default = Reply(content="<<TA-1, TA-5>>", logprobs=chat_logprobs(
        [("<<", 0.9), ("TA-1", 0.5), (", ", 0.9), ("TA-5", 0.5), (">>", 0.9)]))
    annotate_sample(make_samples(1)[0], THERAPEUTIC, worker="w")
    outcome = Outcome.objects.get()
    assert outcome.labels == ["TA-1", "TA-5"] and outcome.confidence == pytest.approx(0.25)


def _raw_reply(content: str, logprobs_json: str) -> Reply:
    """A reply whose logprobs field is raw JSON text (NaN and Infinity are what Python's JSON reader accepts)."""
    body = ('{"model": "fake-model", "choices": [{"message": {"content": ' + json.dumps(content) + '}, "logprobs": '
            + logprobs_json + '}], "usage": {"prompt_tokens": 10, "completion_tokens": 3}}')
    return Reply(body=body.encode())


@uses_db
@pytest.mark.parametrize("logprobs_json", [
    '{"content": [{"token": "<<LEVEL_1>>", "logprob": NaN}]}',
    '{"content": [{"token": "<<LEVEL_1>>", "logprob": -Infinity}]}',
    '{"content": [{"token": "<<LEVEL_1>>", "logprob": "very sure"}]}',
    '{"content": null}', '"yes"', '[[[[[[]]]]]]',
])
def test_a_hostile_logprobs_reply_stores_the_answer_with_no_confidence(http_annotator, fake_llm, logprobs_json):
    logprobs_on()
    fake_llm.default = _raw_reply("<<LEVEL_1>>", logprobs_json)
    assert annotate_sample(make_samples(1)[0], URGENCY, worker="w") is Result.STORED
    outcome = Outcome.objects.get()
    assert (outcome.status, outcome.labels, outcome.confidence) == ("ok", ["LEVEL_1"], None)


@uses_db
def test_a_long_logprobs_array_up_to_the_body_cap_is_read_in_linear_time(http_annotator, fake_llm):
    """1,500 tokens with their top alternatives fill most of the 256 KB answer cap (a longer body is refused
    whole, as any)."""
    logprobs_on()
    pairs = [("x", 0.999)] * 1500 + [("<<", 0.9), ("LEVEL_1", 0.25), (">>", 0.9)]
    fake_llm.default = Reply(content="x" * 1500 + "<<LEVEL_1>>", logprobs=chat_logprobs(pairs))
    assert annotate_sample(make_samples(1)[0], URGENCY, worker="w") is Result.STORED
    assert Outcome.objects.get().confidence == pytest.approx(0.25)


@uses_db
def test_a_malformed_answer_has_no_confidence_whatever_its_logprobs(http_annotator, fake_llm):
    logprobs_on(max_retries=0)
    fake_llm.default = Reply(content="<<LEVEL_9>>", logprobs=chat_logprobs([("<<LEVEL_9>>", 0.99)]))
    assert annotate_sample(make_samples(1)[0], URGENCY, worker="w") is Result.MALFORMED
    assert Outcome.objects.get().confidence is None
