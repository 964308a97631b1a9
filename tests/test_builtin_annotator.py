"""Behaviour of the offline lexicon baseline annotator. Pure tests: no database, no network."""

from __future__ import annotations

import csv
import json
import math
import re
from pathlib import Path

import pytest

from workers_app.engine.builtin import BUILTIN_MODEL, builtin_answer

# The default catalogue, written out here so these tests need neither Django nor a database.
CATALOGUE: dict[str, list[str]] = {
    "urgency": ["LEVEL_0", "LEVEL_1", "LEVEL_2", "LEVEL_3", "LEVEL_4"],
    "therapeutic": [f"TA-{n}" for n in range(1, 10)],
    "intensity": [f"INT-{n}" for n in range(1, 6)],
    "adjunct": [f"ADJ-{n}" for n in range(1, 9)] + ["NONE"],
    "modality": [f"MOD-{n}" for n in range(1, 7)],
    "redressal": [],
}
ORDINAL = {"urgency", "intensity"}
DEMO_CSV = Path(__file__).resolve().parents[1] / "data" / "demo" / "demo_posts.csv"

# The answer marker must close the reply: only whitespace may follow it.
FINAL_MARKER = re.compile(r"<<([^<>]*)>>\s*\Z")

SAMPLE_POSTS = [
    "I want to end my life, I have been thinking about it every night.",
    "I started cutting myself again last week and I am scared.",
    "Panic attacks before every exam, my heart is racing and I can't breathe.",
    "My partner and my parents are always fighting and I am caught in the middle.",
    "I drink alcohol every night and I have stopped eating properly, my weight keeps dropping.",
    "Any tips for staying focused while studying?",
    "The weather was fine today.",
    "I feel lonely at university and my job leaves no time for sleep.",
]


def answer(text: str, domain: str, **kwargs) -> str:
    return builtin_answer(text, domain=domain, codes=CATALOGUE[domain], **kwargs)


def payload(reply: str) -> str:
    found = FINAL_MARKER.search(reply)
    assert found, f"no final marker in {reply!r}"
    return found.group(1)


def codes_in(reply: str) -> list[str]:
    return [part.strip() for part in payload(reply).split(",")]


def is_valid(reply: str, domain: str, codes: list[str]) -> bool:
    """True when the last thing in the reply is a marker a strict parser would accept for this domain."""
    found = FINAL_MARKER.search(reply)
    if not found:
        return False
    content = found.group(1)
    if not codes:
        try:
            items = json.loads(content)
        except ValueError:
            return False
        return isinstance(items, list) and 1 <= len(items) <= 10 and all(
            isinstance(item, str) and item.strip() for item in items
        )
    parts = [part.strip() for part in content.split(",")]
    if not all(part in codes for part in parts) or len(set(parts)) != len(parts):
        return False
    if domain in ORDINAL and len(parts) != 1:
        return False
    return not ("NONE" in parts and len(parts) > 1)


def demo_texts() -> list[str]:
    with DEMO_CSV.open(encoding="utf-8", newline="") as handle:
        return [row["Text"] for row in csv.DictReader(handle)]


def varied_texts(count: int) -> list[str]:
    words = ["exam", "sleep", "partner", "lonely", "panic", "work", "family", "grief", "food", "today", "maybe"]
    return [
        f"Post {n}: I keep thinking about {words[n % len(words)]} and {words[(n * 7) % len(words)]}."
        for n in range(count)
    ]


# --- identity -------------------------------------------------------------------------------------------------

def test_it_has_a_stable_model_name():
    assert BUILTIN_MODEL == "builtin-lexicon-v1"


# --- what it answers ------------------------------------------------------------------------------------------

def test_it_flags_explicit_suicidal_intent_as_critical():
    text = "I can't do this anymore. I want to kill myself."
    assert codes_in(answer(text, "urgency")) == ["LEVEL_4"]
    assert codes_in(answer(text, "intensity")) == ["INT-5"]
    assert {"ADJ-1", "ADJ-5"} <= set(codes_in(answer(text, "adjunct")))
    assert "suicidal thoughts" in json.loads(payload(answer(text, "redressal")))


def test_it_treats_an_overdose_mention_as_critical_and_asks_for_safety_planning():
    text = "I keep thinking about taking an overdose."
    assert codes_in(answer(text, "urgency")) == ["LEVEL_4"]
    assert "ADJ-5" in codes_in(answer(text, "adjunct"))


def test_it_rates_self_harm_as_high_urgency_and_suggests_dbt():
    text = "I have been self-harming again and the urge to cut is strong."
    assert codes_in(answer(text, "urgency")) == ["LEVEL_3"]
    assert "TA-2" in codes_in(answer(text, "therapeutic"))
    assert "ADJ-5" in codes_in(answer(text, "adjunct"))


def test_it_does_not_read_everyday_cutting_back_as_self_harm():
    reply = answer("I am cutting back on coffee before my exams.", "urgency")
    assert codes_in(reply) != ["LEVEL_3"]


@pytest.mark.parametrize(
    ("text", "domain", "expected"),
    [
        ("I get panic attacks on the train.", "therapeutic", "TA-1"),
        ("My anxiety is through the roof.", "therapeutic", "TA-1"),
        ("The flashbacks from the assault will not stop.", "therapeutic", "TA-3"),
        ("I still have nightmares about the abuse.", "therapeutic", "TA-3"),
        ("My relationship with my partner is falling apart.", "therapeutic", "TA-4"),
        ("My family never listens to me.", "therapeutic", "TA-6"),
        ("My partner and I argue all the time.", "modality", "MOD-4"),
        ("My parents fight with me every day.", "modality", "MOD-3"),
        ("I feel so lonely and isolated.", "modality", "MOD-2"),
        ("I feel so lonely and isolated.", "adjunct", "ADJ-4"),
        ("I have been drinking too much and using drugs.", "adjunct", "ADJ-6"),
        ("I obsess over food and my weight.", "adjunct", "ADJ-7"),
        ("My exams at university are crushing me.", "adjunct", "ADJ-3"),
        ("My psychiatrist wants to change my meds.", "adjunct", "ADJ-1"),
        ("My job is burning me out and my career feels stuck.", "adjunct", "ADJ-8"),
        ("I would like to talk to someone online.", "modality", "MOD-5"),
    ],
)
def test_it_maps_lexicon_cues_to_catalogue_codes(text, domain, expected):
    assert expected in codes_in(answer(text, domain))


def test_it_falls_back_to_defaults_when_no_cue_matches():
    text = "The weather was fine today and the bus was on time."
    assert codes_in(answer(text, "urgency")) == ["LEVEL_1"]
    assert codes_in(answer(text, "therapeutic")) == ["TA-9"]
    assert codes_in(answer(text, "intensity")) == ["INT-2"]
    assert codes_in(answer(text, "adjunct")) == ["NONE"]
    assert codes_in(answer(text, "modality")) == ["MOD-1"]
    assert json.loads(payload(answer(text, "redressal"))) == ["general distress"]


def test_it_reads_a_request_for_tips_about_mild_stress_as_self_help():
    text = "Any tips for staying focused while studying?"
    assert codes_in(answer(text, "urgency")) == ["LEVEL_0"]
    assert codes_in(answer(text, "intensity")) == ["INT-1"]
    assert "TA-7" in codes_in(answer(text, "therapeutic"))


def test_intensity_rises_with_urgency():
    levels = ["The weather was fine.", "I get panic attacks.", "I keep cutting myself.", "I want to die."]
    intensities = [int(codes_in(answer(text, "intensity"))[0].split("-")[1]) for text in levels]
    assert intensities == sorted(intensities)
    assert intensities[0] < intensities[-1]


def test_adjunct_none_is_never_combined_with_other_codes():
    for text in SAMPLE_POSTS + demo_texts():
        codes = codes_in(answer(text, "adjunct"))
        assert codes == ["NONE"] or "NONE" not in codes


def test_redressal_is_a_json_list_of_short_issue_phrases():
    reply = answer("I can't sleep before exams and I feel so lonely.", "redressal")
    issues = json.loads(payload(reply))
    assert issues == ["sleep problems", "academic stress", "loneliness"]
    assert 1 <= len(issues) <= 10 and all(len(issue) <= 40 for issue in issues)


def test_matching_ignores_case_but_needs_whole_words():
    assert "ADJ-3" in codes_in(answer("MY EXAMS ARE NEXT WEEK", "adjunct"))
    # "example" starts with "exam" but is no academic cue; "classic" is no "class".
    assert codes_in(answer("Here is an example of a classic film.", "adjunct")) == ["NONE"]


def test_matching_accepts_word_endings_and_typographic_apostrophes():
    assert "TA-1" in codes_in(answer("I was panicking all night.", "therapeutic"))
    assert "sleep problems" in json.loads(payload(answer("I can\u2019t sleep at all.", "redressal")))
    assert codes_in(answer("I have thought about self harm.", "urgency")) == ["LEVEL_3"]


# --- determinism and the code list ----------------------------------------------------------------------------

def test_the_same_input_always_gives_the_same_answer():
    for text in SAMPLE_POSTS:
        for domain in CATALOGUE:
            first = answer(text, domain, malformed_rate=0.5, salt="run-1")
            assert all(answer(text, domain, malformed_rate=0.5, salt="run-1") == first for _ in range(3))


def test_it_only_returns_codes_from_the_given_list():
    trimmed = ["TA-1", "TA-3", "TA-9"]  # staff removed DBT and others
    for text in SAMPLE_POSTS:
        reply = builtin_answer(text, domain="therapeutic", codes=trimmed)
        assert set(codes_in(reply)) <= set(trimmed)


def test_a_missing_ordinal_level_falls_to_the_nearest_kept_one():
    reply = builtin_answer("I want to kill myself.", domain="urgency", codes=["LEVEL_0", "LEVEL_1", "LEVEL_3"])
    assert codes_in(reply) == ["LEVEL_3"]


def test_adjunct_without_none_still_answers_with_a_listed_code():
    codes = ["ADJ-1", "ADJ-2"]
    reply = builtin_answer("The weather was fine.", domain="adjunct", codes=codes)
    assert codes_in(reply) == ["ADJ-1"]


def test_codes_follow_the_order_of_the_given_list():
    text = "My partner and my parents argue, I feel lonely, and I want to talk online."
    forward = codes_in(builtin_answer(text, domain="modality", codes=CATALOGUE["modality"]))
    backward = codes_in(builtin_answer(text, domain="modality", codes=CATALOGUE["modality"][::-1]))
    assert forward == [code for code in CATALOGUE["modality"] if code in forward]
    assert backward == forward[::-1]


def test_an_unknown_domain_gets_the_first_listed_code():
    for text in SAMPLE_POSTS:
        assert codes_in(builtin_answer(text, domain="mystery", codes=["X-2", "X-1"])) == ["X-2"]


def test_an_unknown_domain_without_codes_gets_a_string_list():
    reply = builtin_answer("I feel lonely.", domain="mystery", codes=[])
    assert is_valid(reply, "mystery", [])


# --- answer form ----------------------------------------------------------------------------------------------

def test_the_marker_is_the_last_thing_and_appears_once():
    for text in SAMPLE_POSTS + demo_texts():
        for domain, codes in CATALOGUE.items():
            reply = builtin_answer(text, domain=domain, codes=codes)
            assert is_valid(reply, domain, codes), reply
            assert reply.endswith(">>") and reply.count("<<") == 1 and reply.count(">>") == 1


def test_the_rationale_names_cues_but_never_quotes_the_post():
    text = "My neighbour Bartholomew Quince keeps me awake and I have panic attacks about it every single night."
    for domain in CATALOGUE:
        reply = answer(text, domain)
        assert "Bartholomew" not in reply and "every single night" not in reply
        assert len(reply) < 300
    assert '"panic"' in answer(text, "therapeutic")


# --- malformed answers ----------------------------------------------------------------------------------------

def test_rate_zero_never_gives_a_malformed_answer():
    for text in varied_texts(200) + demo_texts():
        for domain, codes in CATALOGUE.items():
            assert is_valid(builtin_answer(text, domain=domain, codes=codes, malformed_rate=0.0), domain, codes)


def test_rate_one_always_gives_a_malformed_answer():
    for text in varied_texts(200) + demo_texts():
        for domain, codes in CATALOGUE.items():
            reply = builtin_answer(text, domain=domain, codes=codes, malformed_rate=1.0)
            assert not is_valid(reply, domain, codes), reply


def test_a_thirty_percent_rate_malforms_about_thirty_percent_of_inputs():
    domains = list(CATALOGUE)
    replies = [
        (domains[n % len(domains)], builtin_answer(text, domain=domains[n % len(domains)],
                                                   codes=CATALOGUE[domains[n % len(domains)]], malformed_rate=0.3))
        for n, text in enumerate(varied_texts(1000))
    ]
    share = sum(not is_valid(reply, domain, CATALOGUE[domain]) for domain, reply in replies) / len(replies)
    assert 0.23 <= share <= 0.37


def test_the_salt_changes_which_inputs_are_malformed():
    texts = varied_texts(300)
    picked = {
        salt: [not is_valid(answer(text, "urgency", malformed_rate=0.5, salt=salt), "urgency", CATALOGUE["urgency"])
               for text in texts]
        for salt in ("a", "b")
    }
    assert picked["a"] != picked["b"]


def test_malformed_answers_look_like_real_model_mistakes():
    coded = [answer(text, "urgency", malformed_rate=1.0) for text in varied_texts(200)]
    assert any("<<" not in reply for reply in coded)  # no marker at all
    assert any(re.search(r"<<LEVEL_\d+>>$", reply) for reply in coded)  # a level outside the scale
    assert any(re.search(r"<<LEVEL_\d or LEVEL_\d>>$", reply) for reply in coded)  # two alternatives
    assert any(reply.endswith("<<>>") for reply in coded)  # empty marker
    listed = [answer(text, "redressal", malformed_rate=1.0) for text in varied_texts(200)]
    assert any(re.search(r"<<\[.*[^\]]>>$", reply) for reply in listed)  # unclosed JSON list


@pytest.mark.parametrize("rate", [-0.01, 1.01, 2, math.nan, math.inf, -math.inf])
def test_a_rate_outside_zero_to_one_raises_value_error(rate):
    with pytest.raises(ValueError, match="malformed_rate"):
        answer("I feel lonely.", "urgency", malformed_rate=rate)


def test_a_rate_that_is_not_a_number_is_rejected():
    with pytest.raises(TypeError, match="malformed_rate"):
        answer("I feel lonely.", "urgency", malformed_rate="0.3")


def test_a_100k_character_post_gets_a_well_formed_answer_in_every_domain():
    chunk = "I have panic attacks before exams, my parents pressure me, and I can't sleep. "
    text = (chunk * (100_000 // len(chunk) + 1))[:100_000]
    for domain, codes in CATALOGUE.items():
        assert is_valid(answer(text, domain), domain, codes)


# --- the demo file --------------------------------------------------------------------------------------------

def test_the_demo_posts_file_has_forty_synthetic_posts_with_unique_ids():
    with DEMO_CSV.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.reader(handle))
    assert rows[0] == ["ID", "Text"]
    body = rows[1:]
    assert [row[0] for row in body] == [f"DEMO-{n:03d}" for n in range(1, 41)]
    assert all(len(row) == 2 and row[1].startswith("[synthetic] ") for row in body)
    assert sum("=SUM(A1)" in row[1] for row in body) == 1
