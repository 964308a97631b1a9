"""The GBNF grammars of structured answers, checked with llama.cpp's own grammar engine (tests/llama_grammar.py):
each parses (a grammar llama-cpp-python's server cannot parse crashes it), allows every valid answer in the form it
asks for, and allows nothing that the JSON reader would refuse. Pure logic: no database, no server."""

from __future__ import annotations

import itertools
import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.helpers import default_domain_specs
from tests.llama_grammar import GrammarChecker
from workers_app.engine.grammar import answer_grammar
from workers_app.engine.parsing import parse_json_answer
from workers_app.engine.structured import structured_text

SPECS = default_domain_specs()


@pytest.fixture(scope="module")
def llama() -> GrammarChecker:
    checker = GrammarChecker()
    yield checker
    checker.close()


def grammar(slug: str) -> str:
    return answer_grammar(*SPECS[slug])


def reads(slug: str, text: str):
    kind, codes, rules = SPECS[slug]
    return parse_json_answer(text, kind=kind, codes=codes, rules=rules)


@pytest.mark.parametrize(("kind", "codes", "rules"), [
    *SPECS.values(),
    ("nominal", ["a"], {}),
    ("ordinal", ["v1.0", "v1.0_b", "X-1", "9z"], {}),
    ("code_set", [f"C{n}" for n in range(100)], {}),
    ("code_set", ["ONLY"], {"none_code": "ONLY"}),
    ("code_set", ["A", "B"], {"none_code": "NOTHING"}),  # a none code that is not among the codes
    ("string_list", [], {"min_items": 0, "max_items": 1, "max_item_chars": 1}),
    ("string_list", [], {"min_items": 100, "max_items": 100, "max_item_chars": 10_000}),
    ("ordinal", [], {}),  # a domain its own clean() refuses: its grammar must still parse
    ("code_set", [], {}),
])
def test_every_grammar_parses_in_llama_cpp(llama, kind, codes, rules):
    assert llama.parses(answer_grammar(kind, codes, rules))


def test_a_broken_grammar_is_caught_by_the_checker(llama):
    assert not llama.parses("root ::= (((")


@pytest.mark.parametrize("slug", ["urgency", "intensity"])
def test_a_single_code_grammar_allows_exactly_one_code(llama, slug):
    kind, codes, _ = SPECS[slug]
    for code in codes:
        text = structured_text(kind, [code])
        assert llama.allows(grammar(slug), text) and reads(slug, text).labels == (code,)
    for text in ('{"answer": "LEVEL_9"}', '{"answer": "level_1"}', '{"answer":"LEVEL_1"}', '{"answer": "LEVEL_1"} ',
                 '{"answer": ["LEVEL_1"]}', '{"answer": "LEVEL_1", "why": "x"}', '{"answer": "INT-12"}', "<<LEVEL_1>>"):
        assert not llama.allows(grammar(slug), text), text


@pytest.mark.parametrize("slug", ["therapeutic", "adjunct", "modality"])
def test_a_code_set_grammar_allows_every_set_in_catalogue_order_and_nothing_else(llama, slug):
    kind, codes, rules = SPECS[slug]
    combinable = [code for code in codes if code != rules.get("none_code")]
    subsets = [list(chosen) for size in (1, 2, len(combinable)) for chosen in itertools.combinations(combinable, size)]
    for chosen in subsets:
        text = structured_text(kind, chosen)
        assert llama.allows(grammar(slug), text), text
        assert reads(slug, text).labels == tuple(chosen)
    first, second = combinable[:2]
    refused = [[second, first], [first, first], [], ["NOPE"], [first.lower()]]
    if rules.get("none_code"):
        assert llama.allows(grammar(slug), structured_text(kind, ["NONE"]))
        refused += [["NONE", first], [first, "NONE"], ["NONE", "NONE"]]
    for chosen in refused:
        assert not llama.allows(grammar(slug), structured_text(kind, chosen)), chosen


def test_a_string_list_grammar_holds_the_counts_and_lengths_of_the_rules(llama):
    rules = {"min_items": 2, "max_items": 3, "max_item_chars": 5}
    text_grammar = answer_grammar("string_list", [], rules)
    allowed = [["sleep", "exams"], ["a", "b", "c"], ['q"uo', "b\\s"], ["é ü", "日本"], ["a  ", "b"]]
    for items in allowed:
        text = structured_text("string_list", items)
        assert llama.allows(text_grammar, text), text
        assert parse_json_answer(text, kind="string_list", codes=[], rules=rules).ok
    for items in (["one"], ["a", "b", "c", "d"], ["sleeps", "b"], [" a", "b"], ["", "b"], ["a\nb", "c"]):
        assert not llama.allows(text_grammar, structured_text("string_list", items)), items


WORDS = ["ADJ-1", "ADJ-3", "ADJ-8", "NONE", "LEVEL_2", "LEVEL_4", "x", "", " y", "a\"b", "é" * 201]
# Answers near the valid ones: right or wrong key, value, spacing and order.
NEAR_VALID = st.builds(
    lambda key, value, separators: json.dumps({key: value}, separators=separators, ensure_ascii=False),
    st.sampled_from(["answer", "Answer", "answers"]),
    st.one_of(st.sampled_from(WORDS), st.lists(st.sampled_from(WORDS), max_size=4), st.integers()),
    st.sampled_from([(", ", ": "), (",", ":"), (", ", ":")]))
PIECES = st.lists(st.sampled_from(['{"answer": ', "}", "[", "]", ", ", '"ADJ-1"', '"NONE"', '"LEVEL_2"', '"x"', " ",
                                   ":", "null", '"']), min_size=1, max_size=10).map("".join)
SLUGS = st.sampled_from(["urgency", "adjunct", "redressal"])
GRAMMAR_TESTS = settings(max_examples=200, deadline=None,
                         suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])


@GRAMMAR_TESTS
@given(st.one_of(NEAR_VALID, PIECES), SLUGS)
def test_whatever_a_grammar_allows_the_json_reader_accepts(llama, text, slug):
    if llama.allows(grammar(slug), text):
        assert reads(slug, text).ok, text


@GRAMMAR_TESTS
@given(st.lists(st.sampled_from(WORDS[:6]), min_size=1, max_size=3), SLUGS)
def test_every_valid_answer_in_the_grammars_form_is_allowed(llama, words, slug):
    kind = SPECS[slug][0]
    text = structured_text(kind, words)
    canonical = reads(slug, text).ok and (kind != "code_set" or list(reads(slug, text).labels) == words)
    if canonical:
        assert llama.allows(grammar(slug), text), text


def test_the_answers_the_grammar_allows_are_the_json_that_few_shot_examples_show():
    assert structured_text("ordinal", ["LEVEL_2"]) == '{"answer": "LEVEL_2"}'
    assert json.loads(structured_text("code_set", ["ADJ-3", "ADJ-6"])) == {"answer": ["ADJ-3", "ADJ-6"]}
