"""Hostile structured (JSON) answers: whatever a server sends where a JSON answer should be (wrong types, extra or
repeated keys, codes outside the enum, NONE mixed with codes, huge arrays, nested junk, half an object), the reader
names a reason and stores no label; through the real client and a real server, each lands as a malformed outcome
with that reason, its raw answer kept, and nothing else changes."""

from __future__ import annotations

import json
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.fake_llm import Reply
from tests.helpers import default_domain_specs, make_samples
from workers_app.engine.annotate import Result, annotate_sample
from workers_app.engine.catalogue_cache import forget_cached_rows
from workers_app.engine.keys import WorkerKey
from workers_app.engine.parsing import REASONS, ParseResult, parse_json_answer
from workers_app.models import Annotator, MalformedAttempt, Outcome

DOMAINS = default_domain_specs()


def read(domain: str, answer: str | None) -> ParseResult:
    kind, codes, rules = DOMAINS[domain]
    return parse_json_answer(answer, kind=kind, codes=codes, rules=rules)


def answer(value: object) -> str:
    return json.dumps({"answer": value})


DEEP = "[" * 100_000 + "]" * 100_000
CASES = {
    # wrong types
    "a number for a code": ("urgency", answer(3), "wrong_type"),
    "null for a code": ("urgency", answer(None), "wrong_type"),
    "true for a code": ("intensity", answer(True), "wrong_type"),
    "a list for one code": ("urgency", answer(["LEVEL_1"]), "wrong_type"),
    "NaN for a code": ("urgency", '{"answer": NaN}', "wrong_type"),
    "1e999 for a code": ("urgency", '{"answer": 1e999}', "wrong_type"),
    "a string for a code set": ("adjunct", answer("ADJ-1"), "not_a_list"),
    "a string for a list": ("redressal", answer("sleep"), "not_a_list"),
    "numbers in a code set": ("adjunct", answer([1, 2]), "item_not_string"),
    "numbers in a list": ("redressal", answer([1]), "item_not_string"),
    "a bare code": ("urgency", '"LEVEL_1"', "not_an_object"),
    "a bare list": ("adjunct", '["ADJ-1"]', "not_an_object"),
    # keys
    "an extra key": ("urgency", '{"answer": "LEVEL_1", "reasoning": "risk words"}', "extra_keys"),
    "another key": ("urgency", '{"label": "LEVEL_1"}', "missing_answer"),
    "an empty object": ("urgency", "{}", "missing_answer"),
    "the key twice": ("urgency", '{"answer": "LEVEL_0", "answer": "LEVEL_4"}', "duplicate_key"),
    "forty thousand keys": ("urgency", json.dumps({f"k{n}": n for n in range(40_000)}), "missing_answer"),
    "forty thousand keys, one twice": ("urgency", json.dumps({f"k{n}": n for n in range(40_000)})[:-1]
                                       + ', "k39999": 0}', "duplicate_key"),
    # codes outside the enum
    "an unknown code": ("urgency", answer("LEVEL_9"), "unknown_code"),
    "a longer code": ("intensity", answer("INT-12"), "unknown_code"),
    "an unknown code in a set": ("adjunct", answer(["ADJ-1", "ADJ-9"]), "unknown_code"),
    "two codes in one item": ("adjunct", answer(["ADJ-1, ADJ-2"]), "unknown_code"),
    "two codes in one string": ("urgency", answer("LEVEL_1, LEVEL_2"), "multiple_codes"),
    "an empty code": ("urgency", answer(""), "empty_marker"),
    # sets
    "NONE mixed with codes": ("adjunct", answer(["NONE", "ADJ-1"]), "none_with_codes"),
    "a repeated code": ("therapeutic", answer(["TA-1", "TA-1"]), "duplicate_code"),
    "an empty set": ("modality", answer([]), "too_few_items"),
    # huge arrays and strings
    "ten thousand codes": ("adjunct", answer(["ADJ-1"] * 10_000), "too_many_items"),
    "more codes than the domain has": ("modality", answer([f"MOD-{n}" for n in range(1, 7)] + ["MOD-1"]),
                                       "too_many_items"),
    "ten thousand items": ("redressal", answer(["x"] * 10_000), "too_many_items"),
    "an item of 201 characters": ("redressal", answer(["x" * 201]), "item_too_long"),
    "a blank item": ("redressal", answer(["  "]), "empty_item"),
    "an escaped NUL in an item": ("redressal", '{"answer": ["sleep\\u0000"]}', "item_bad_character"),
    "a lone surrogate in an item": ("redressal", '{"answer": ["\\ud800 sleep"]}', "item_bad_character"),
    "an empty list": ("redressal", answer([]), "too_few_items"),
    # nested junk
    "an object for a code": ("urgency", answer({"answer": "LEVEL_1"}), "wrong_type"),
    "lists in a code set": ("adjunct", answer([["ADJ-1"]]), "item_not_string"),
    "objects in a list": ("redressal", answer([{"issue": "sleep"}]), "item_not_string"),
    "nested a hundred thousand deep": ("adjunct", '{"answer": ' + DEEP + "}", "invalid_json"),
    # not JSON, or not only JSON
    "a marker instead": ("urgency", "Risk is moderate. <<LEVEL_2>>", "invalid_json"),
    "half an object": ("urgency", '{"answer": "LEVEL_', "invalid_json"),
    "in a code fence": ("urgency", '```json\n{"answer": "LEVEL_1"}\n```', "invalid_json"),
    "text after the object": ("urgency", '{"answer": "LEVEL_1"} I hope this helps', "invalid_json"),
    "two objects": ("urgency", '{"answer": "LEVEL_1"}{"answer": "LEVEL_2"}', "invalid_json"),
    "a 5,000-digit number": ("urgency", '{"answer": ' + "9" * 5000 + "}", "invalid_json"),
    "a refusal": ("urgency", "I'm sorry, but I can't help with that.", "refusal"),
    "nothing": ("urgency", "", "empty_answer"),
    "white space": ("urgency", " \n\t ", "empty_answer"),
    "None": ("urgency", None, "empty_answer"),
}


@pytest.mark.parametrize("case", CASES)
def test_a_hostile_json_answer_is_refused_with_its_reason(case):
    domain, text, reason = CASES[case]
    started = time.monotonic()
    result = read(domain, text)
    assert time.monotonic() - started < 3.0  # no answer within the size cap costs a worker long (a scan per key took 33 s)
    assert (result.ok, result.labels, result.reason) == (False, (), reason), result
    assert reason in REASONS and result.detail and len(result.detail) < 400


def test_the_details_say_what_went_wrong():
    assert "did the server ignore the structured-output parameter" in read("urgency", "<<LEVEL_2>>").detail
    assert "cut off (is max_tokens too small?)" in read("urgency", '{"answer": ["LEV').detail
    assert "'reasoning'" in read("urgency", '{"answer": "LEVEL_1", "reasoning": ""}').detail


@pytest.mark.parametrize(("domain", "text", "labels"), [
    ("urgency", ' \n{"answer": "LEVEL_3"}\n', ("LEVEL_3",)),
    ("urgency", '{"answer":"level_3"}', ("LEVEL_3",)),  # case, as for markers: the catalogue spelling is kept
    ("adjunct", answer(["ADJ-6", "ADJ-3"]), ("ADJ-3", "ADJ-6")),  # catalogue order, as for markers
    ("adjunct", answer(["NONE"]), ("NONE",)),
    ("redressal", answer([" sleep ", "exam stress"]), ("sleep", "exam stress")),
])
def test_a_valid_json_answer_gives_the_labels_a_marker_would(domain, text, labels):
    assert read(domain, text) == ParseResult(ok=True, labels=labels)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=200), st.sampled_from(list(DOMAINS)))
def test_no_text_makes_the_reader_fail_without_a_reason(text, domain):
    result = read(domain, text)
    assert result.ok or result.reason in REASONS


JSON_VALUES = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
                           lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=8), inner,
                                                                                        max_size=4), max_leaves=20)


@settings(max_examples=300, deadline=None)
@given(JSON_VALUES, st.sampled_from(list(DOMAINS)))
def test_no_json_value_makes_the_reader_fail_without_a_reason(value, domain):
    result = read(domain, answer(value))
    assert result.ok or result.reason in REASONS


def test_an_unknown_kind_is_a_bug_of_the_caller_not_a_bad_answer():
    with pytest.raises(ValueError, match="unsupported domain kind"):
        parse_json_answer("{}", kind="free", codes=[])


STORED = {"wrong type": ("urgency", answer(3), "wrong_type"),
          "extra key": ("urgency", '{"answer": "LEVEL_1", "x": 1}', "extra_keys"),
          "NONE mixed": ("adjunct", answer(["ADJ-2", "NONE"]), "none_with_codes"),
          "huge array": ("adjunct", answer(["ADJ-1"] * 5000), "too_many_items"),
          "nested junk": ("redressal", answer([[["sleep"]]]), "item_not_string"),
          "escaped NUL": ("redressal", '{"answer": ["a\\u0000b"]}', "item_bad_character")}


@pytest.mark.django_db
@pytest.mark.parametrize("case", STORED)
def test_through_a_real_server_a_hostile_json_answer_is_stored_as_malformed_with_its_reason(http_annotator, fake_llm,
                                                                                        case):
    domain, text, reason = STORED[case]
    Annotator.objects.filter(number=1).update(structured="json_schema", max_retries=1)
    forget_cached_rows()
    fake_llm.default = Reply(content=text)
    [sample] = make_samples(1)
    assert annotate_sample(sample, WorkerKey(1, domain), worker="w") is Result.MALFORMED
    outcome = Outcome.objects.get()
    assert (outcome.status, outcome.reason, outcome.labels, outcome.raw_answer) == ("malformed", reason, [], text)
    assert list(MalformedAttempt.objects.values_list("reason", flat=True)) == [reason, reason]
    assert Annotator.objects.get(number=1).backend_error == ""


@pytest.mark.django_db
@pytest.mark.parametrize("content", ['Issues: <<["a\\u0000b"]>>', '<<["\\udfff"]>>'])
def test_a_free_text_list_with_characters_no_database_stores_is_malformed_not_a_crash(http_annotator, fake_llm,
                                                                                     content):
    """The marker's JSON list is read by the same code: before, PostgreSQL refused the label and the task failed."""
    Annotator.objects.filter(number=1).update(max_retries=0)
    fake_llm.default = Reply(content=content)
    [sample] = make_samples(1)
    assert annotate_sample(sample, WorkerKey(1, "redressal"), worker="w") is Result.MALFORMED
    assert Outcome.objects.get().reason == "item_bad_character"
