"""Behaviour of the `<<...>>` answer parser; pure logic, no database."""

from __future__ import annotations

import json
import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from workers_app.engine import parsing
from workers_app.engine.parsing import REASONS, ParseResult, parse_answer

URGENCY = [f"LEVEL_{n}" for n in range(5)]
INTENSITY = [f"INT-{n}" for n in range(1, 6)]
THERAPEUTIC = [f"TA-{n}" for n in range(1, 10)]
ADJUNCT = [f"ADJ-{n}" for n in range(1, 9)] + ["NONE"]
ADJUNCT_RULES = {"none_code": "NONE"}
MODALITY = [f"MOD-{n}" for n in range(1, 7)]
REDRESSAL_RULES = {"min_items": 1, "max_items": 10, "max_item_chars": 200}

DOMAINS = {
    "urgency": ("ordinal", URGENCY, None),
    "intensity": ("ordinal", INTENSITY, None),
    "therapeutic": ("code_set", THERAPEUTIC, None),
    "adjunct": ("code_set", ADJUNCT, ADJUNCT_RULES),
    "modality": ("code_set", MODALITY, None),
    "redressal": ("string_list", [], REDRESSAL_RULES),
}
CODE_DOMAINS = ["urgency", "intensity", "therapeutic", "adjunct", "modality"]
SINGLE_DOMAINS = ["urgency", "intensity"]
SET_DOMAINS = ["therapeutic", "adjunct", "modality"]

FAST = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def parse(domain: str, answer: str | None) -> ParseResult:
    kind, codes, rules = DOMAINS[domain]
    return parse_answer(answer, kind=kind, codes=codes, rules=rules)


def assert_ok(result: ParseResult, *labels: str) -> None:
    assert result == ParseResult(ok=True, labels=labels), result


def assert_fails(result: ParseResult, reason: str) -> None:
    assert not result.ok, result
    assert result.labels == ()
    assert result.reason == reason, result
    assert result.detail.strip(), result


def assert_well_formed(result: ParseResult) -> None:
    if result.ok:
        assert result.reason == ""
        assert result.detail == ""
        assert result.labels
    else:
        assert result.reason in REASONS
        assert result.detail.strip()
        assert result.labels == ()


# ------------------------------------------------------------------------------------------ the reason vocabulary


def test_every_reason_constant_is_its_lowercase_name_and_listed_in_reasons():
    names = [name for name in dir(parsing) if name.isupper() and getattr(parsing, name) in REASONS]
    assert len(set(REASONS)) == len(REASONS)
    assert {getattr(parsing, name) for name in names} == set(REASONS)
    for name in names:
        assert getattr(parsing, name) == name.lower()


@pytest.mark.parametrize(
    "name",
    [
        "EMPTY_ANSWER", "NO_MARKER", "REFUSAL", "EMPTY_MARKER", "UNKNOWN_CODE", "MULTIPLE_CODES", "AMBIGUOUS",
        "NONE_WITH_CODES", "DUPLICATE_CODE", "INVALID_JSON", "NOT_A_LIST", "ITEM_NOT_STRING", "EMPTY_ITEM",
        "TOO_FEW_ITEMS", "TOO_MANY_ITEMS", "ITEM_TOO_LONG",
    ],
)
def test_the_briefed_reason_codes_exist(name):
    assert getattr(parsing, name) in REASONS


def test_parse_result_is_frozen():
    result = parse("urgency", "<<LEVEL_1>>")
    with pytest.raises(AttributeError):
        result.ok = False  # type: ignore[misc]


def test_an_unknown_kind_is_a_programming_error_not_a_parse_failure():
    with pytest.raises(ValueError, match="unsupported domain kind"):
        parse_answer("<<LEVEL_1>>", kind="free_text", codes=URGENCY)


# ------------------------------------------------------------------------------------------ single codes


def test_it_reads_an_ordinal_code_at_the_end_of_reasoning():
    assert_ok(parse("urgency", "The writer mentions a plan for tonight.\n\n<<LEVEL_4>>"), "LEVEL_4")


def test_it_tolerates_whitespace_and_newlines_inside_the_marker():
    assert_ok(parse("intensity", "<<  INT-3 \n>>"), "INT-3")


def test_it_rejects_int_12_instead_of_reading_int_1():
    result = parse("intensity", "Intensity: <<INT-12>>")
    assert_fails(result, parsing.UNKNOWN_CODE)
    assert "'INT-12'" in result.detail
    assert "INT-1, INT-2" in result.detail


def test_it_rejects_level_2_or_level_4_as_ambiguous():
    result = parse("urgency", "Hard to say. <<LEVEL_2 or LEVEL_4>>")
    assert_fails(result, parsing.AMBIGUOUS)
    assert "LEVEL_2" in result.detail
    assert "LEVEL_4" in result.detail


@pytest.mark.parametrize("inside", ["LEVEL_2/LEVEL_4", "LEVEL_2 - LEVEL_4", "LEVEL_3 (high)", "probably LEVEL_3"])
def test_it_rejects_alternatives_and_words_around_a_single_code_as_ambiguous(inside):
    assert_fails(parse("urgency", f"<<{inside}>>"), parsing.AMBIGUOUS)


def test_it_rejects_two_comma_separated_codes_where_one_is_required():
    result = parse("urgency", "<<LEVEL_2, LEVEL_3>>")
    assert_fails(result, parsing.MULTIPLE_CODES)
    assert "LEVEL_2, LEVEL_3" in result.detail


def test_it_reports_the_unknown_code_when_a_single_code_list_mixes_known_and_unknown():
    result = parse("urgency", "<<LEVEL_2, LEVEL_9>>")
    assert_fails(result, parsing.UNKNOWN_CODE)
    assert "LEVEL_9" in result.detail


def test_it_ignores_a_template_echo_before_the_real_answer():
    answer = "The format is <<LEVEL_X>> as instructed.\nReasoning: moderate distress.\n<<LEVEL_2>>"
    assert_ok(parse("urgency", answer), "LEVEL_2")


def test_the_last_marker_wins_even_when_it_is_the_wrong_one():
    # The prompt says the final marker is the answer, so a trailing echo is not silently skipped.
    assert_fails(parse("urgency", "<<LEVEL_2>>\nRemember the format <<LEVEL_n>>"), parsing.UNKNOWN_CODE)


def test_it_accepts_a_lower_cased_code_and_returns_the_catalogue_spelling():
    assert_ok(parse("urgency", "<<level_3>>"), "LEVEL_3")
    assert_ok(parse("therapeutic", "<<ta-1, Ta-5>>"), "TA-1", "TA-5")


def test_a_case_variant_matching_two_codes_that_differ_only_by_case_is_ambiguous():
    codes = ["ab", "AB", "cd"]
    assert_ok(parse_answer("<<AB>>", kind="nominal", codes=codes), "AB")
    assert_ok(parse_answer("<<CD>>", kind="nominal", codes=codes), "cd")
    result = parse_answer("<<Ab>>", kind="nominal", codes=codes)
    assert_fails(result, parsing.AMBIGUOUS)
    assert "ab, AB" in result.detail


def test_a_nominal_domain_reads_one_code():
    assert_ok(parse_answer("<<anxiety>>", kind="nominal", codes=["anxiety", "depression"]), "anxiety")


def test_a_code_with_trailing_extra_angle_bracket_still_reads():
    assert_ok(parse("urgency", "<<<LEVEL_1>>>"), "LEVEL_1")


# ------------------------------------------------------------------------------------------ code sets


def test_it_reads_a_code_set_in_catalogue_order():
    assert_ok(parse("therapeutic", "<<TA-5, TA-1>>"), "TA-1", "TA-5")


def test_it_tolerates_semicolons_and_stray_separators_in_a_code_set():
    assert_ok(parse("modality", "<<MOD-5; MOD-1,>>"), "MOD-1", "MOD-5")


def test_it_rejects_ta_10_instead_of_reading_ta_1():
    result = parse("therapeutic", "<<TA-10>>")
    assert_fails(result, parsing.UNKNOWN_CODE)
    assert "'TA-10'" in result.detail


def test_it_rejects_ta_10_hidden_among_valid_codes():
    assert_fails(parse("therapeutic", "<<TA-1, TA-10>>"), parsing.UNKNOWN_CODE)


def test_a_set_token_that_is_not_a_code_is_unknown_and_hints_at_commas():
    result = parse("therapeutic", "<<TA-1 and TA-5>>")
    assert_fails(result, parsing.UNKNOWN_CODE)
    assert "comma" in result.detail


def test_it_accepts_none_alone():
    assert_ok(parse("adjunct", "Nothing extra is needed. <<NONE>>"), "NONE")


def test_it_rejects_none_together_with_other_codes():
    result = parse("adjunct", "<<ADJ-1, NONE>>")
    assert_fails(result, parsing.NONE_WITH_CODES)
    assert "ADJ-1" in result.detail


def test_none_is_an_ordinary_unknown_token_where_the_domain_has_no_none_rule():
    assert_fails(parse("modality", "<<NONE>>"), parsing.UNKNOWN_CODE)


def test_it_rejects_a_code_given_twice():
    result = parse("therapeutic", "<<TA-2, TA-3, ta-2>>")
    assert_fails(result, parsing.DUPLICATE_CODE)
    assert "TA-2" in result.detail


def test_it_rejects_none_given_twice_as_a_duplicate():
    assert_fails(parse("adjunct", "<<NONE, NONE>>"), parsing.DUPLICATE_CODE)


@pytest.mark.parametrize("domain", CODE_DOMAINS)
def test_a_marker_of_only_separators_is_empty(domain):
    assert_fails(parse(domain, "<< , ; >>"), parsing.EMPTY_MARKER)


# ------------------------------------------------------------------------------------------ no usable marker


@pytest.mark.parametrize("domain", list(DOMAINS))
@pytest.mark.parametrize("answer", [None, "", "   \n\t "])
def test_an_empty_answer_is_reported_as_empty(domain, answer):
    assert_fails(parse(domain, answer), parsing.EMPTY_ANSWER)


@pytest.mark.parametrize("domain", list(DOMAINS))
def test_an_answer_without_marker_is_reported(domain):
    assert_fails(parse(domain, "The writer seems stressed; LEVEL_2 would fit. [\"exam stress\"]"), parsing.NO_MARKER)


@pytest.mark.parametrize(
    "answer",
    [
        "I'm sorry, but I can't help with this request.",
        "I\u2019m sorry, but I can\u2019t do that.",
        "I cannot help with content about self-harm.",
        "As an AI, I am not qualified to judge this post.",
        "I won't label posts like this one.",
        "I am unable to assist with this.",
    ],
)
def test_a_refusal_without_marker_is_reported_as_refusal(answer):
    assert_fails(parse("urgency", answer), parsing.REFUSAL)


def test_doubt_is_not_mistaken_for_a_refusal():
    assert_fails(parse("urgency", "I can't tell from the post how urgent this is."), parsing.NO_MARKER)


def test_a_refusal_that_still_ends_with_a_marker_is_an_answer():
    assert_ok(parse("urgency", "I'm sorry you are going through this. <<LEVEL_3>>"), "LEVEL_3")


@pytest.mark.parametrize("domain", list(DOMAINS))
@pytest.mark.parametrize("marker", ["<<>>", "<<   >>", "<<\n>>"])
def test_an_empty_marker_is_reported(domain, marker):
    assert_fails(parse(domain, f"Some reasoning.\n{marker}"), parsing.EMPTY_MARKER)


@pytest.mark.parametrize("domain", list(DOMAINS))
def test_a_marker_cut_off_before_closing_is_reported_and_not_replaced_by_an_earlier_one(domain):
    # Truncated output must not fall back to an earlier (possibly template) marker.
    result = parse(domain, "Example: <<LEVEL_0>> <<TA-1>> <<[\"x\"]>>\nAnswer: <<LEVEL_")
    assert_fails(result, parsing.UNCLOSED_MARKER)


# ------------------------------------------------------------------------------------------ string lists


def test_it_reads_a_string_list_and_strips_items():
    answer = 'Issues:\n<<[\n  "sleep problems ",\n  " exam stress"\n]>>'
    assert_ok(parse("redressal", answer), "sleep problems", "exam stress")


def test_it_ignores_the_echoed_example_list_before_the_real_one():
    answer = 'Format: <<["sleep problems", "exam stress"]>>\nMine: <<["loneliness"]>>'
    assert_ok(parse("redressal", answer), "loneliness")


def test_a_closing_bracket_pair_inside_an_item_does_not_end_the_marker():
    assert_ok(parse("redressal", '<<["feels >> everyone", "panic"]>>'), "feels >> everyone", "panic")


def test_an_opening_bracket_pair_inside_an_item_does_not_start_a_new_marker():
    assert_ok(parse("redressal", '<<["a << b", "c"]>>'), "a << b", "c")


def test_a_whole_marker_inside_an_item_stays_part_of_the_item():
    assert_ok(parse("redressal", 'x <<["a", "<<1>>"]>> '), "a", "<<1>>")


def test_a_broken_last_list_is_not_replaced_by_an_earlier_valid_echo():
    assert_fails(parse("redressal", 'Format: <<["a", "b"]>>\nMine: <<["loneliness",]>>'), parsing.INVALID_JSON)


def test_it_rejects_an_empty_item():
    result = parse("redressal", '<<["sleep problems", "  "]>>')
    assert_fails(result, parsing.EMPTY_ITEM)
    assert "item 2" in result.detail


def test_it_rejects_eleven_items():
    result = parse("redressal", f"<<{json.dumps([f'issue {n}' for n in range(11)])}>>")
    assert_fails(result, parsing.TOO_MANY_ITEMS)
    assert "11" in result.detail


def test_it_accepts_exactly_ten_items():
    items = [f"issue {n}" for n in range(10)]
    assert_ok(parse("redressal", f"<<{json.dumps(items)}>>"), *items)


def test_it_rejects_an_empty_list():
    assert_fails(parse("redressal", "<<[]>>"), parsing.TOO_FEW_ITEMS)


@pytest.mark.parametrize("inside", ["sleep problems, exam stress", "['sleep problems']", '["a", "b"', '["a"] and more'])
def test_it_rejects_non_json(inside):
    assert_fails(parse("redressal", f"<<{inside}>>"), parsing.INVALID_JSON)


@pytest.mark.parametrize(
    ("inside", "named"), [('{"issues": ["sleep"]}', "object"), ('"sleep"', "string"), ("3", "number")]
)
def test_it_rejects_a_json_value_that_is_not_a_list(inside, named):
    result = parse("redressal", f"<<{inside}>>")
    assert_fails(result, parsing.NOT_A_LIST)
    assert named in result.detail


@pytest.mark.parametrize("item", ["1", "null", "true", '["nested"]', '{"a": 1}'])
def test_it_rejects_an_item_that_is_not_a_string(item):
    assert_fails(parse("redressal", f'<<["ok", {item}]>>'), parsing.ITEM_NOT_STRING)


def test_it_rejects_an_item_longer_than_the_limit_after_stripping():
    assert_ok(parse("redressal", f'<<["  {"x" * 200}  "]>>'), "x" * 200)
    assert_fails(parse("redressal", f'<<["{"x" * 201}"]>>'), parsing.ITEM_TOO_LONG)


def test_string_list_rules_default_when_absent():
    assert_fails(parse_answer(f"<<{json.dumps(['a'] * 11)}>>", kind="string_list", codes=[]), parsing.TOO_MANY_ITEMS)
    assert_fails(parse_answer("<<[]>>", kind="string_list", codes=[]), parsing.TOO_FEW_ITEMS)


# ------------------------------------------------------------------------------------------ properties

spacing = st.text(alphabet=" \t\n", max_size=3)
separator = st.sampled_from([",", ";"])


@st.composite
def rendered_code_set(draw, domain: str):
    _, codes, rules = DOMAINS[domain]
    usable = [code for code in codes if not rules or code != rules.get("none_code")]
    chosen = draw(st.lists(st.sampled_from(usable), min_size=1, unique=True))
    order = draw(st.permutations(chosen))
    parts = [draw(spacing) + draw(st.sampled_from([code, code.lower()])) + draw(spacing) for code in order]
    body = parts[0] + "".join(draw(separator) + part for part in parts[1:])
    return chosen, f"<<{body}>>"


@FAST
@given(data=st.data(), domain=st.sampled_from(SET_DOMAINS))
def test_any_subset_in_any_order_with_any_spacing_parses_to_that_set_in_catalogue_order(data, domain):
    chosen, answer = data.draw(rendered_code_set(domain))
    _, codes, _ = DOMAINS[domain]
    assert_ok(parse(domain, answer), *[code for code in codes if code in chosen])


@FAST
@given(data=st.data(), domain=st.sampled_from(CODE_DOMAINS))
def test_a_valid_code_glued_to_more_code_characters_is_rejected(data, domain):
    _, codes, _ = DOMAINS[domain]
    code = data.draw(st.sampled_from(codes))
    suffix = data.draw(st.text(alphabet="0123456789_-abcXYZ", min_size=1, max_size=4))
    token = code + suffix
    if token.casefold() in {c.casefold() for c in codes}:
        return
    result = parse(domain, f"<<{token}>>")
    assert_fails(result, parsing.UNKNOWN_CODE)
    assert repr(token) in result.detail


def _only_whitespace_and_separators(text: str) -> bool:
    return not re.sub(r"[\s,;]", "", text)


@FAST
@given(data=st.data(), domain=st.sampled_from(SINGLE_DOMAINS))
def test_a_single_code_followed_by_anything_meaningful_is_rejected(data, domain):
    _, codes, _ = DOMAINS[domain]
    code = data.draw(st.sampled_from(codes))
    suffix = data.draw(st.text(st.characters(blacklist_characters="<>"), min_size=1, max_size=12))
    if _only_whitespace_and_separators(suffix):
        return
    result = parse(domain, f"<<{code}{suffix}>>")
    assert not result.ok, (code, suffix)
    assert_well_formed(result)


@FAST
@given(text=st.text(max_size=200).filter(lambda t: "<<" not in t), domain=st.sampled_from(list(DOMAINS)))
def test_text_without_an_opening_marker_never_parses(text, domain):
    result = parse(domain, text)
    assert not result.ok
    assert result.reason in {parsing.EMPTY_ANSWER, parsing.NO_MARKER, parsing.REFUSAL}
    assert_well_formed(result)


@FAST
@given(text=st.text(max_size=200), domain=st.sampled_from(list(DOMAINS)))
def test_any_text_gives_a_well_formed_result(text, domain):
    assert_well_formed(parse(domain, text))


noise_marker = st.text(st.characters(blacklist_characters="<>"), max_size=15).map(lambda body: f"<<{body}>>")
prefix = st.lists(st.one_of(st.text(max_size=30), noise_marker), max_size=5).map("".join)


@FAST
@given(data=st.data(), before=prefix, domain=st.sampled_from(CODE_DOMAINS))
def test_the_last_marker_wins_over_any_text_and_markers_before_it(data, before, domain):
    _, codes, _ = DOMAINS[domain]
    code = data.draw(st.sampled_from(codes))
    assert_ok(parse(domain, f"{before}<<{code}>>\n"), code)


# Prose before a JSON marker is kept free of double quotes: a quote opened in the prose could otherwise be closed
# inside the real list and make a JSON value spanning both, which no reading can tell apart from the intended one.
quote_free_prose = st.text(st.characters(blacklist_characters='"'), max_size=30)
quote_free_marker = st.text(st.characters(blacklist_characters='<>"'), max_size=15).map(lambda body: f"<<{body}>>")
# Items hold any character a database stores: NUL and lone surrogates are refused (tests/hostile/test_structured_replies).
item = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), min_size=1,
               max_size=40).filter(lambda s: s.strip() and s == s.strip())


@FAST
@given(items=st.lists(item, min_size=1, max_size=10), indent=st.sampled_from([None, 2]))
def test_string_lists_round_trip_through_json_dumps(items, indent):
    assert_ok(parse("redressal", f"Issues below.\n<<{json.dumps(items, indent=indent)}>>"), *items)


@FAST
@given(
    items=st.lists(item, min_size=1, max_size=10),
    before=st.lists(st.one_of(quote_free_prose, quote_free_marker), max_size=5).map("".join),
)
def test_the_last_string_list_wins_over_text_and_markers_before_it(items, before):
    assert_ok(parse("redressal", f"{before}<<{json.dumps(items, ensure_ascii=False)}>>"), *items)
