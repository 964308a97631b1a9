"""Hostile state documents: every one is refused with the place and the reason, changes nothing, and an attempted
import leaves a failed audit row naming the problem."""

from __future__ import annotations

import json

import pytest

from admin_ops.services.state import StateError, export_state, import_state
from audit.actions import Action
from audit.models import AuditLog
from tests.hostile.conftest import assert_failed_audit

pytestmark = pytest.mark.django_db

# Marks a value that json.dumps cannot write (1e400): the text is put in after dumping.
RAW = "@@raw@@"


def annotator(index: int, **values):
    return lambda d: d["catalogue"]["annotators"][index].update(values)


def domain(index: int, **values):
    return lambda d: d["catalogue"]["domains"][index].update(values)


def price(**values):
    """A price of annotator 1 from 2026-01-01, changed by ``values``."""
    return lambda d: d["prices"].append({"annotator": 1, "valid_from": "2026-01-01", "input_per_1k": "0.001",
                                         "output_per_1k": "0.002", "cache_read_per_1k": None,
                                         "cache_write_per_1k": None, "currency": "USD", "batch_percent": "50", **values})


def run(index: int, **values):
    return lambda d: d["runs"][index].update(values)


def new_run(**values):
    """A second run, of annotator 1 and domain urgency, changed by ``values``."""
    return lambda d: d["runs"].append({**d["runs"][0], "name": "second", "is_current": False, "all_samples": False,
                                       "annotators": [1], "domains": ["urgency"], **values})


def nested(depth: int) -> object:
    value: object = "deep"
    for _ in range(depth):
        value = {"x": value}
    return value


def repeat_first(part: str):
    """The second annotator (or domain) takes the number (or slug) of the first."""
    key = {"annotators": "number", "domains": "slug"}[part]
    return lambda d: d["catalogue"][part][1].update({key: d["catalogue"][part][0][key]})


CASES = {
    "an unknown backend": (annotator(0, backend="evil"),
                           "catalogue.annotators[0].backend: Value 'evil' is not a valid choice."),
    "codes that are numbers": (domain(0, codes=[1, 2]), "catalogue.domains[0].codes: Entry 1: an object with"),
    "a slug that climbs out of a folder": (domain(0, slug="../../pwn"), "catalogue.domains[0].slug: Enter a valid"),
    "annotator number 0": (annotator(0, number=0),
                           "catalogue.annotators[0].number: Ensure this value is greater than or equal to 1."),
    "zero requests per minute": (annotator(1, requests_per_minute=0),
                                 ("catalogue.annotators[1].requests_per_minute: Ensure this value is greater than "
                                  "or equal to 1.")),
    "a negative timeout": (annotator(2, timeout_seconds=-1),
                           ("catalogue.annotators[2].timeout_seconds: Ensure this value is greater than or equal to "
                            "0.1.")),
    "a prompt without {text}": (domain(1, prompt_template="Label this post."),
                                "catalogue.domains[1].prompt_template: The template must contain {text}."),
    "10**30 tokens": (annotator(0, max_tokens=10**30),
                      "catalogue.annotators[0].max_tokens: Ensure this value is less than or equal to 32768."),
    "NaN": (annotator(0, temperature=float("nan")),
            "catalogue.annotators[0].temperature: NaN is not a number JSON allows"),
    "Infinity": (annotator(3, timeout_seconds=float("inf")),
                 "catalogue.annotators[3].timeout_seconds: Infinity is not a number JSON allows"),
    "a float that overflows to infinity": (annotator(0, builtin_malformed_rate=RAW),
                                           ("catalogue.annotators[0].builtin_malformed_rate: 1e400 is not a number "
                                            "JSON allows")),
    "a boolean for a whole number": (annotator(0, max_retries=True),
                                     ("catalogue.annotators[0].max_retries: expected a whole number, got true or "
                                      "false")),
    "a boolean for a float": (annotator(0, temperature=False),
                              "catalogue.annotators[0].temperature: expected a number, got true or false"),
    "text for a float": (annotator(0, temperature="hot"),
                         "catalogue.annotators[0].temperature: expected a number, got text"),
    "an object for text": (annotator(4, model={"$gt": ""}),
                           "catalogue.annotators[4].model: expected text, got an object"),
    "a list for the parse rules": (domain(0, parse_rules=["none_code"]),
                                   "catalogue.domains[0].parse_rules: expected an object, got a list"),
    "parse rules of another kind": (domain(0, parse_rules={"max_items": 5}),
                                    ("catalogue.domains[0].parse_rules: 'max_items' is not a rule of a ordinal "
                                     "domain")),
    "an over-long model name": (annotator(0, model="m" * 5000),
                                ("catalogue.annotators[0].model: Ensure this value has at most 200 characters "
                                 "(it has 5000).")),
    "a base URL of the cloud metadata service": (
        annotator(0, backend="openai_compatible", base_url="http://169.254.169.254/latest/meta-data/"),
        ("catalogue.annotators[0].base_url: http://169.254.169.254/latest/meta-data/: 169.254.169.254 is a "
         "link-local address")),
    "SECRET_KEY as the key's variable": (annotator(0, api_key_env="SECRET_KEY"),
                                         ("catalogue.annotators[0].api_key_env: give the NAME of an environment "
                                          "variable that starts with LLM_KEY_")),
    "an API key pasted as the model": (annotator(0, model="sk-proj-abcdefghijklmnop1234567890"),
                                       "catalogue.annotators[0].model: This looks like an API key"),
    "a control character in a title": (domain(2, title="Urgency\x1b[2J"),
                                       "catalogue.domains[2].title: Control characters are not allowed here."),
    "an unknown domain kind": (domain(0, kind="evil"), "catalogue.domains[0].kind: Value 'evil' is not a valid"),
    "a negative position": (domain(0, position=-1),
                            "catalogue.domains[0].position: Ensure this value is greater than or equal to 0."),
    "a key smuggled in as an extra field": (annotator(0, api_key="sk-live-0000"),
                                            "catalogue.annotators[0]: unknown field 'api_key'"),
    "a worker of an unknown annotator": (lambda d: d["workers"][0].update(annotator=42),
                                         "workers[0].annotator: no annotator 42 in the document or the console"),
    "a worker of an unknown domain": (lambda d: d["workers"][3].update(domain="nope"),
                                      "workers[3].domain: no domain 'nope' in the document or the console"),
    "a text worker number": (lambda d: d["workers"][0].update(annotator="1"),
                             "workers[0].annotator: expected a whole number, got text"),
    "two annotators with one number": (repeat_first("annotators"),
                                       ("catalogue.annotators[1]: number 1 is given twice (also "
                                        "catalogue.annotators[0])")),
    "two domains with one slug": (repeat_first("domains"),
                                  "catalogue.domains[1]: slug 'urgency' is given twice (also catalogue.domains[0])"),
    "two rows for one worker": (lambda d: d["workers"].append(dict(d["workers"][0])),
                                "workers[30]: the worker (1, 'urgency') is given twice (also workers[0])"),
    "nesting deeper than any export": (domain(0, parse_rules=nested(40)), "nested more than 32 levels deep"),
    "an annotator number of 10**30": (annotator(0, number=10**30),
                                      "catalogue.annotators[0].number: Ensure this value is less than or equal to 99."),
    "a NUL character in a slug": (domain(0, slug="urgency\x00"), "catalogue.domains[0].slug: a NUL character"),
    "a version given as true": (lambda d: d.update(version=True),
                                "version: this console reads versions 1, 2, 3 and 4, the file is version True"),
    "a list instead of the catalogue": (lambda d: d.update(catalogue=[]),
                                        "catalogue: expected an object with lists 'domains' and 'annotators'"),
    "a negative budget": (annotator(0, budget="-5"), "catalogue.annotators[0].budget: The budget cannot be negative."),
    "a budget given as a number": (annotator(0, budget=5),
                                   "catalogue.annotators[0].budget: expected text or null, got a number"),
    "the response cache at temperature 0.7": (
        annotator(0, backend="openai_compatible", base_url="http://127.0.0.1:9/v1", temperature=0.7,
                  cache_responses=True),
        "catalogue.annotators[0].cache_responses: The response cache needs temperature 0: at 0.7"),
    "cache_responses given as text": (annotator(0, cache_responses="yes"),
                                      "catalogue.annotators[0].cache_responses: expected true or false, got text"),
    "prices that are not a list": (lambda d: d.update(prices={}), "prices: expected a list"),
    "a price in no currency": (price(currency="usd"),
                               "prices[0].currency: Enter a three-letter ISO 4217 currency code in capitals"),
    "a negative price": (price(input_per_1k="-0.5"),
                         "prices[0].input_per_1k: Ensure this value is greater than or equal to 0."),
    "a price given as a number": (price(output_per_1k=0.5), "prices[0].output_per_1k: expected text, got a number"),
    "a negative cache price": (price(cache_read_per_1k="-1"),
                               "prices[0].cache_read_per_1k: Ensure this value is greater than or equal to 0."),
    "a cache price given as a number": (price(cache_write_per_1k=1.25),
                                        "prices[0].cache_write_per_1k: expected text or null, got a number"),
    "an unknown structured mode": (annotator(0, structured="xml"),
                                   "catalogue.annotators[0].structured: Value 'xml' is not a valid choice."),
    "structured output for the built-in baseline": (
        annotator(1, structured="grammar"),
        "catalogue.annotators[1].structured: Structured output is for the OpenAI-compatible backend"),
    "a fallback given as text": (annotator(0, structured_fallback="yes"),
                                 "catalogue.annotators[0].structured_fallback: expected true or false, got text"),
    "a price of no date": (price(valid_from="1st of May"), "prices[0].valid_from: "),
    "a price of an unknown annotator": (price(annotator=42),
                                        "prices[0].annotator: no annotator 42 in the document or the console"),
    "two prices of one day": (lambda d: [price()(d), price()(d)],
                              ("prices[1]: the price of (annotator, valid_from) (1, '2026-01-01') is given twice "
                               "(also prices[0])")),
    "two currencies for one annotator": (lambda d: [price()(d), price(valid_from="2026-02-01", currency="EUR")(d)],
                                         "prices[1].currency: EUR, but annotator 1 has USD in prices[0]"),
    "a key smuggled in with a price": (price(api_key="sk-live-0000"), "prices[0]: unknown field 'api_key'"),
    "a runs part that is not a list": (lambda d: d.update(runs="default"), "runs: expected a list"),
    "a run with a bad name": (new_run(name="../Second"), "runs[1].name: 1-40 lower-case letters"),
    "two current runs": (new_run(is_current=True), "runs[1].is_current: runs[0] is current too"),
    "a run named like a page": (new_run(name="compare"),
                                "runs[1].name: 'compare' is reserved for a page of the workspace"),
    "a run of a sample the console lacks": (new_run(samples=["nobody"]),
                                            "runs[1].samples: sample 'nobody' is not in the console"),
    "a run of an unknown domain": (new_run(domains=["nope"]), "runs[1].domains: domain 'nope' is not in the catalogue"),
    "a pinned that is not an object": (run(0, pinned="everything"), "runs[0].pinned: expected an object"),
    "a key smuggled into what a run pins": (
        run(0, pinned={"annotators": {"1": {"api_key_encrypted": "sk-live-0000"}}}),
        "runs[0].pinned.annotators.1.api_key_encrypted: not a setting a run pins"),
    "a run that changes the settings of one the console has": (
        run(0, all_samples=False), "runs[0]: the store has a run 'default' with other all_samples"),
    "a negative run budget": (run(0, budget="-1"), "runs[0].budget: The budget cannot be negative."),
    "a run without its members": (lambda d: d["runs"][0].pop("samples"), "runs[0]: missing field 'samples'"),
    "a confidence threshold above 1": (domain(0, review_below_confidence=1.5),
                                       ("catalogue.domains[0].review_below_confidence: Ensure this value is less than "
                                        "or equal to 1.0.")),
    "a negative agreement threshold": (domain(1, review_below_agreement=-0.1),
                                       ("catalogue.domains[1].review_below_agreement: Ensure this value is greater "
                                        "than or equal to 0.0.")),
    "a threshold given as text": (domain(0, review_below_confidence="0.5"),
                                  "catalogue.domains[0].review_below_confidence: expected a number or null, got text"),
    "a threshold given as a boolean": (domain(2, review_below_agreement=True),
                                       ("catalogue.domains[2].review_below_agreement: expected a number or null, got "
                                        "true or false")),
    "a NaN threshold": (domain(0, review_below_confidence=float("nan")),
                        "catalogue.domains[0].review_below_confidence: NaN is not a number JSON allows"),
    "a version 4 domain without its thresholds": (lambda d: d["catalogue"]["domains"][0].pop("review_below_agreement"),
                                                  "catalogue.domains[0]: missing field 'review_below_agreement'"),
    "an unknown batch mode": (annotator(0, mode="overnight"),
                              "catalogue.annotators[0].mode: Value 'overnight' is not a valid choice."),
    "batch mode for the built-in baseline": (annotator(1, mode="batch"),
                                             "catalogue.annotators[1].mode: Batch mode is for the OpenAI-compatible"),
    "a batch size given as text": (annotator(0, batch_size="100"),
                                   "catalogue.annotators[0].batch_size: expected a whole number, got text"),
    "a batch discount above 100 %": (price(batch_percent="150"),
                                     "prices[0].batch_percent: Ensure this value is less than or equal to 100."),
    "request_logprobs given as text": (annotator(0, request_logprobs="yes"),
                                       "catalogue.annotators[0].request_logprobs: expected true or false, got text"),
    "request_logprobs given as null": (annotator(0, request_logprobs=None),
                                       "catalogue.annotators[0].request_logprobs: expected true or false, got null"),
    "no answers per item": (annotator(0, answers_per_item=0),
                            ("catalogue.annotators[0].answers_per_item: Ensure this value is greater than or equal "
                             "to 1.")),
    "answers per item given as text": (annotator(0, answers_per_item="3"),
                                       "catalogue.annotators[0].answers_per_item: expected a whole number, got text"),
    "three answers per item at temperature 0": (
        annotator(0, backend="openai_compatible", base_url="http://127.0.0.1:9/v1", answers_per_item=3),
        "catalogue.annotators[0].answers_per_item: 3 answers per item need a temperature above 0"),
    "three answers per item from the built-in baseline": (
        annotator(1, temperature=0.7, answers_per_item=3),
        "catalogue.annotators[1].answers_per_item: Several answers per item are for the OpenAI-compatible backend"),
    "a version 3 document with a version 4 field": (
        lambda d: [d.update(version=3), [[a.pop(name) for name in ("answers_per_item", "mode", "batch_protocol",
                                                                   "batch_size")] for a in d["catalogue"]["annotators"]],
                   [a.pop("request_logprobs") for a in d["catalogue"]["annotators"][1:]],
                   [(x.pop("review_below_confidence"), x.pop("review_below_agreement"))
                    for x in d["catalogue"]["domains"]]],
        "catalogue.annotators[0]: unknown field 'request_logprobs'"),
}


@pytest.fixture
def document(catalogue) -> dict:
    # The export creates the worker rows, so it runs before the fingerprint is taken.
    found = json.loads(export_state(actor="test", target="memory"))
    assert [w for w in found["workers"] if (w["annotator"], w["domain"]) == (1, "urgency")] == [found["workers"][0]]
    return found


def hostile_text(document: dict, change) -> str:
    change(document)
    return json.dumps(document).replace(f'"{RAW}"', "1e400")


@pytest.mark.parametrize("case", list(CASES))
def test_it_refuses_a_hostile_state_document(document, unchanged, case):
    change, message = CASES[case]

    with pytest.raises(StateError) as refused:
        import_state(hostile_text(document, change), source="hostile.json", actor="test")

    assert message in str(refused.value) and "nothing was changed" in str(refused.value)
    unchanged()
    assert_failed_audit(Action.IMPORT_STATE, mentioning=message)


@pytest.mark.parametrize(("text", "message"), [
    pytest.param("{" * 3, "hostile.json: not JSON", id="broken JSON"),
    pytest.param("[" * 100_000 + "]" * 100_000, "hostile.json: not JSON (nested too deeply)", id="100000 levels"),
    pytest.param('["annotation-fleet-state"]', "the document is not a JSON object", id="a list"),
])
def test_it_refuses_text_that_is_not_a_state_document(catalogue, unchanged, text, message):
    with pytest.raises(StateError) as refused:
        import_state(text, source="hostile.json", actor="test")

    assert message in str(refused.value)
    unchanged()
    assert_failed_audit(Action.IMPORT_STATE, mentioning=message)


def test_it_refuses_a_6_mb_document_before_parsing_it(document, unchanged):
    document["padding"] = "x" * (6 * 1024 * 1024)

    with pytest.raises(StateError, match="hostile.json: larger than the limit of 5,242,880 bytes"):
        import_state(json.dumps(document), source="hostile.json", actor="test")

    unchanged()
    assert_failed_audit(Action.IMPORT_STATE, mentioning="larger than the limit of 5,242,880 bytes")


def test_it_names_every_problem_of_a_document_at_once(document, unchanged):
    annotator(1, requests_per_minute=0)(document)
    annotator(2, timeout_seconds=-1)(document)
    domain(1, prompt_template="no field")(document)

    with pytest.raises(StateError) as refused:
        import_state(json.dumps(document), source="hostile.json", actor="test")

    assert [line for line in str(refused.value).splitlines() if line.startswith("  - ")] == [
        "  - catalogue.domains[1].prompt_template: The template must contain {text}.",
        "  - catalogue.annotators[1].requests_per_minute: Ensure this value is greater than or equal to 1.",
        "  - catalogue.annotators[2].timeout_seconds: Ensure this value is greater than or equal to 0.1.",
    ]
    unchanged()


def test_a_refused_dry_run_writes_no_audit_row(document, unchanged):
    with pytest.raises(StateError, match=r"catalogue.annotators\[0\].backend"):
        import_state(hostile_text(document, annotator(0, backend="evil")), source="hostile.json", actor="test",
                     dry_run=True)

    unchanged()
    assert not AuditLog.objects.filter(action=Action.IMPORT_STATE).exists()
