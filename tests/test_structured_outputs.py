"""Structured outputs against real HTTP servers on loopback (tests/fake_llm.py): a server that holds every answer to
the domain's JSON schema leaves nothing malformed, a server that refuses the parameter gives one clear error, the
fallback to free text happens only when staff chose it, and runs, the response cache and the cost follow the mode."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest

from tests.fake_llm import Reply, schema_problem
from tests.helpers import make_samples
from workers_app.engine.annotate import Result, annotate_sample, annotate_samples
from workers_app.engine.catalogue_cache import forget_cached_rows
from workers_app.engine.cost import cost_totals, forget_cached_prices
from workers_app.engine.keys import WorkerKey
from workers_app.engine.store import clear_backend_error
from workers_app.local_profile import LOCAL_GEMMA
from workers_app.models import Alert, Annotator, AnnotatorPrice, Domain, MalformedAttempt, Outcome
from workers_app.monitoring.sweep import health_sweep
from workers_app.runs.current import pinned_rows
from workers_app.runs.services import RunPlan, create_run, switch_run

pytestmark = pytest.mark.django_db

DOMAINS = ("urgency", "therapeutic", "intensity", "adjunct", "modality", "redressal")
# A model that never answers in any valid form, free text or JSON: only a constraint can make it well-formed.
JUNK = ("no idea, sorry", '{"answer": 42}', "<<???>>", '{"label": "LEVEL_9", "answer": ["x", "x"]}')


def junk_model(body: dict) -> str:
    return JUNK[len(json.dumps(body)) % len(JUNK)]


def structured(number: int = 1, **changes) -> Annotator:
    Annotator.objects.filter(number=number).update(**{"structured": "json_schema", **changes})
    forget_cached_rows()  # as a worker would within its cache's 2 s
    return Annotator.objects.get(number=number)


def second_http_annotator(fake_llm) -> None:
    Annotator.objects.filter(number=2).update(backend="openai_compatible", base_url=fake_llm.url, model="fake-model",
                                              max_retries=2, timeout_seconds=1.0)


def test_a_structured_annotator_against_a_schema_enforcing_server_has_no_malformed_answer(http_annotator, fake_llm):
    """The same junk-answering model: in free text every answer is malformed; held to the schema, none is."""
    fake_llm.enforce_schema, fake_llm.content_for = True, junk_model
    structured(1)
    second_http_annotator(fake_llm)
    samples = make_samples(4, vary=True)
    for slug in DOMAINS:
        annotate_samples(samples, WorkerKey(1, slug), worker="w")
        annotate_samples(samples, WorkerKey(2, slug), worker="w")
    held = Outcome.objects.filter(annotator__number=1)
    assert held.count() == 24 and not held.exclude(status="ok").exists()
    assert not MalformedAttempt.objects.filter(annotator__number=1).exists()
    free = Outcome.objects.filter(annotator__number=2)
    assert free.count() == 24 and not free.filter(status="ok").exists()
    adjunct = held.get(domain__slug="adjunct", sample_id=samples[0])
    assert adjunct.labels == ["ADJ-1"] and json.loads(adjunct.raw_answer) == {"answer": ["ADJ-1"]}
    assert adjunct.parameters["structured"] == "json_schema" and adjunct.parameters["schema_version"] == 1
    assert free.first().parameters["structured"] == "none"


@pytest.mark.parametrize(("mode", "request_mode"), [("json_schema", "chat"), ("json_object", "chat"),
                                                    ("json_schema", "completion"), ("json_object", "completion")])
def test_each_mode_sends_the_schema_as_its_servers_take_it(http_annotator, fake_llm, mode, request_mode):
    fake_llm.enforce_schema, fake_llm.content_for = True, junk_model
    structured(1, structured=mode, request_mode=request_mode)
    [sample] = make_samples(1)
    assert annotate_sample(sample, WorkerKey(1, "adjunct"), worker="w") is Result.STORED
    body = fake_llm.requests[0]["body"]
    schema = Domain.objects.get(slug="adjunct").answer_schema
    if mode == "json_schema":
        assert body["response_format"] == {"type": "json_schema", "json_schema": {
            "name": "adjunct_answer", "schema": schema, "strict": True}}
    else:
        assert body["response_format"] == {"type": "json_object", "schema": schema}
    # llama.cpp's server reads its own field in completion mode, where a base model's answer still ends at its line
    assert body.get("json_schema") == (schema if request_mode == "completion" else None)
    assert body.get("stop") == (["\n"] if request_mode == "completion" else None) and "grammar" not in body
    if request_mode == "chat":  # OpenAI's JSON mode refuses a request whose messages do not say JSON
        assert "Reply with a JSON object only" in body["messages"][0]["content"]
    else:  # a base model learns the form from its examples
        assert 'Answer: {"answer": ["NONE"]}' in body["prompt"]


def test_grammar_mode_sends_the_grammar_and_few_shot_examples_in_json(http_annotator, fake_llm):
    structured(1, structured="grammar", request_mode="completion")
    fake_llm.default = Reply(content='{"answer": ["NONE"]}')
    [sample] = make_samples(1)
    assert annotate_sample(sample, WorkerKey(1, "adjunct"), worker="w") is Result.STORED
    body = fake_llm.requests[0]["body"]
    assert body["grammar"].startswith('root ::= "{\\"answer\\": " value "}"')
    assert "response_format" not in body and "stop" not in body
    assert 'Answer: {"answer": ["NONE"]}' in body["prompt"] and 'Answer: {"answer": ["ADJ-3", "ADJ-6"]}' in body[
        "prompt"] and "<<" not in body["prompt"]
    assert Outcome.objects.get().labels == ["NONE"]


def test_the_free_text_path_is_unchanged(http_annotator, fake_llm):
    [sample] = make_samples(1)
    fake_llm.default = Reply(content="Cues. <<LEVEL_3>>")
    annotate_sample(sample, WorkerKey(1, "urgency"), worker="w")
    body = fake_llm.requests[0]["body"]
    assert not {"response_format", "grammar", "json_schema"} & set(body)
    assert "JSON object" not in body["messages"][0]["content"] and Outcome.objects.get().labels == ["LEVEL_3"]


@pytest.mark.parametrize(("status", "error"), [
    (400, "Unrecognized request argument supplied: response_format"),
    (422, "response_format: json_schema is not supported"),
    (400, "Invalid JSON schema: 'maxLength' is not permitted in strict mode"),
    # llama-cpp-python 0.3.36 answers an unknown response_format type with a 500 that names it (measured)
    (500, ("1 validation error: {'loc': ('body', 'response_format', 'type'), 'msg': \"Input should be 'text' or "
          "'json_object'\"}")),
])
def test_a_server_that_refuses_the_parameter_gives_one_clear_error(http_annotator, fake_llm, status, error):
    structured(1)
    fake_llm.default = Reply(status=status, error=error)
    samples = make_samples(5, vary=True)
    annotate_samples(samples, WorkerKey(1, "urgency"), worker="w")
    annotate_samples(samples, WorkerKey(1, "adjunct"), worker="w")
    assert len(fake_llm.requests) == 1  # no retry, no storm: the rest are blocked without a call
    message = Annotator.objects.get(number=1).backend_error
    assert message.startswith("the server refuses structured output 'json_schema' (sent as response_format)")
    assert f"HTTP {status}" in message and "allow the fallback to free text" in message
    assert not Outcome.objects.exists() and not MalformedAttempt.objects.exists()
    health_sweep()
    alerts = list(Alert.objects.filter(kind__in=("backend", "structured")).values_list("kind", "message"))
    assert [kind for kind, _ in alerts] == ["backend"] and "refuses structured output" in alerts[0][1]


@pytest.mark.parametrize("error", ["out of memory", "database schema out of date"])
def test_a_server_error_that_does_not_name_the_parameter_is_still_retried(http_annotator, fake_llm, error):
    structured(1)
    fake_llm.enforce_schema = True
    fake_llm.script.append(Reply(status=500, error=error))
    [sample] = make_samples(1)
    assert annotate_sample(sample, WorkerKey(1, "urgency"), worker="w") is Result.STORED
    assert len(fake_llm.requests) == 2 and Annotator.objects.get(number=1).backend_error == ""


def test_with_the_fallback_the_refusal_is_recorded_once_and_the_annotator_answers_in_free_text(http_annotator,
                                                                                            fake_llm):
    structured(1, structured_fallback=True)
    fake_llm.refuse = ("response_format",)
    fake_llm.default = Reply(content="Cues. <<LEVEL_2>>")
    samples = make_samples(3, vary=True)
    annotate_samples(samples, WorkerKey(1, "urgency"), worker="w")
    sent = [request["body"] for request in fake_llm.requests]
    assert ["response_format" in body for body in sent] == [True, False, False, False]
    assert "<<" in sent[1]["messages"][0]["content"] and "JSON object" not in sent[1]["messages"][0]["content"]
    assert Outcome.objects.filter(status="ok").count() == 3
    assert {o.parameters["structured"] for o in Outcome.objects.all()} == {"none"}
    annotator = Annotator.objects.get(number=1)
    assert annotator.backend_error == "" and "refuses structured output 'json_schema'" in annotator.structured_refused
    assert annotator.structured_refused_at is not None
    health_sweep()
    assert list(Alert.objects.filter(kind__in=("backend", "structured")).values_list("kind", flat=True)) == [
        "structured"]
    # Staff clear it once the server is fixed: the annotator asks for structured output again.
    fake_llm.refuse, fake_llm.enforce_schema = (), True
    clear_backend_error(annotator, actor="staff")
    forget_cached_rows()
    [later] = make_samples(1, text="another post")
    annotate_sample(later, WorkerKey(1, "urgency"), worker="w")
    assert "response_format" in fake_llm.requests[-1]["body"]
    assert Outcome.objects.get(sample_id=later).parameters["structured"] == "json_schema"


def test_the_refusal_field_of_a_structured_answer_is_a_refusal(http_annotator, fake_llm):
    structured(1, max_retries=0)
    fake_llm.default = Reply(body=json.dumps({"model": "m", "choices": [{"message": {
        "content": None, "refusal": "I can't help with that request."}}]}).encode())
    [sample] = make_samples(1)
    assert annotate_sample(sample, WorkerKey(1, "urgency"), worker="w") is Result.MALFORMED
    outcome = Outcome.objects.get()
    assert (outcome.reason, outcome.raw_answer) == ("refusal", "I can't help with that request.")


def test_a_named_run_pins_the_structured_mode_and_the_schema_version(http_annotator, fake_llm):
    fake_llm.enforce_schema, fake_llm.content_for = True, junk_model
    structured(1)
    [sample] = make_samples(1)
    run = create_run(RunPlan(name="structured", annotators=[1], domains=["adjunct"]), actor="tester")
    pinned = run.pinned
    assert pinned["annotators"]["1"]["structured"] == "json_schema"
    assert pinned["domains"]["adjunct"]["schema_version"] == 1
    # Later the catalogue changes: the annotator goes back to free text, adjunct gains a code (schema v2).
    domain = Domain.objects.get(slug="adjunct")
    domain.codes = [*domain.codes, {"code": "ADJ-9", "description": "housing"}]
    domain.save()
    Annotator.objects.filter(number=1).update(structured="none")
    assert Domain.objects.get(slug="adjunct").schema_version == 2
    annotator, pinned_domain = pinned_rows(run, Annotator.objects.get(number=1), Domain.objects.get(slug="adjunct"))
    assert (annotator.structured, pinned_domain.schema_version) == ("json_schema", 1)
    assert "ADJ-9" not in json.dumps(pinned_domain.answer_schema)
    switch_run(run, actor="tester")
    annotate_samples([sample], WorkerKey(1, "adjunct"), worker="w", run_id=run.pk)
    body = fake_llm.requests[-1]["body"]
    assert "ADJ-9" not in json.dumps(body["response_format"]) and "ADJ-8" in json.dumps(body["response_format"])
    assert Outcome.objects.get(run=run).parameters == {**Outcome.objects.get(run=run).parameters,
                                                       "structured": "json_schema", "schema_version": 1}


def test_a_run_pinned_before_structured_outputs_keeps_asking_in_free_text(http_annotator, fake_llm):
    make_samples(1)
    run = create_run(RunPlan(name="older", annotators=[1], domains=["urgency"]), actor="tester")
    for values in run.pinned["annotators"].values():
        del values["structured"], values["structured_fallback"]
    run.save()
    structured(1)
    annotator, _ = pinned_rows(run, Annotator.objects.get(number=1), Domain.objects.get(slug="urgency"))
    assert annotator.structured == "none"


def test_the_schema_version_counts_changes_of_the_schema_only(catalogue):
    domain = Domain.objects.get(slug="redressal")
    domain.prompt_template += "\nBe brief."
    domain.save()
    domain.codes = []  # unchanged
    domain.save()
    assert (domain.prompt_version, domain.schema_version) == (2, 1)
    domain.parse_rules = {**domain.parse_rules, "max_items": 5}
    domain.save()
    assert (domain.prompt_version, domain.schema_version) == (2, 2)
    urgency = Domain.objects.get(slug="urgency")
    urgency.codes = [{**entry, "description": entry["description"] + "."} for entry in urgency.codes]
    urgency.save()
    assert urgency.schema_version == 1  # descriptions are not in the schema


def test_every_default_schema_is_valid_json_schema_and_fits_openai_strict_mode(catalogue):
    for domain in Domain.objects.all():
        assert schema_problem(domain.answer_schema, strict=True) == "", domain.slug
    assert Domain.objects.get(slug="urgency").answer_schema["properties"]["answer"] == {
        "type": "string", "enum": ["LEVEL_0", "LEVEL_1", "LEVEL_2", "LEVEL_3", "LEVEL_4"]}
    adjunct = Domain.objects.get(slug="adjunct").answer_schema["properties"]["answer"]["anyOf"]
    assert adjunct[0]["items"]["enum"] == [f"ADJ-{n}" for n in range(1, 9)] and adjunct[0]["maxItems"] == 8
    assert adjunct[1] == {"type": "array", "items": {"type": "string", "enum": ["NONE"]}, "minItems": 1,
                          "maxItems": 1}
    assert Domain.objects.get(slug="redressal").answer_schema["properties"]["answer"] == {
        "type": "array", "items": {"type": "string", "minLength": 1, "maxLength": 200}, "minItems": 1,
        "maxItems": 10}


def test_structured_and_free_text_answers_are_cached_apart(http_annotator, fake_llm):
    Annotator.objects.filter(number=1).update(cache_responses=True)
    fake_llm.enforce_schema = True
    fake_llm.default = Reply(content="<<LEVEL_2>>")
    first, second = make_samples(2, text="the same post")
    annotate_sample(first, WorkerKey(1, "urgency"), worker="w")  # free text, cached
    structured(1)
    annotate_sample(second, WorkerKey(1, "urgency"), worker="w")  # not answered from the free-text entry
    assert len(fake_llm.requests) == 2
    assert Outcome.objects.get(sample_id=second).labels == ["LEVEL_0"]  # the schema-enforced answer


def test_the_builtin_baseline_cannot_be_set_to_structured_output(catalogue):
    annotator = Annotator.objects.get(number=2)
    annotator.structured = "grammar"
    with pytest.raises(Exception, match="Structured output is for the OpenAI-compatible backend"):
        annotator.full_clean()


def test_the_local_gemma_profile_asks_for_a_grammar(catalogue):
    assert LOCAL_GEMMA["structured"] == "grammar" and LOCAL_GEMMA["request_mode"] == "completion"


# ---------------------------------------------------------------------------------------------- prompt-cache cost


def _price(**cache_prices) -> None:
    AnnotatorPrice.objects.create(annotator=Annotator.objects.get(number=1), input_per_1k=Decimal("1.0"),
                                  output_per_1k=Decimal("2.0"), **cache_prices)
    forget_cached_prices()


@pytest.mark.parametrize("usage", [
    # OpenAI (and vLLM, LiteLLM): cached tokens inside prompt_tokens, reported in prompt_tokens_details
    {"prompt_tokens": 1000, "completion_tokens": 100,
     "prompt_tokens_details": {"cached_tokens": 600, "cache_write_tokens": 300}},
    # LiteLLM passing on Anthropic's counts at the top of usage
    {"prompt_tokens": 1000, "completion_tokens": 100, "cache_read_input_tokens": 600,
     "cache_creation_input_tokens": 300},
])
def test_prompt_cache_tokens_are_priced_at_their_own_prices(http_annotator, fake_llm, usage):
    _price(cache_read_per_1k=Decimal("0.1"), cache_write_per_1k=Decimal("1.25"))
    fake_llm.default = Reply(content="<<LEVEL_1>>", usage=usage)
    [sample] = make_samples(1)
    annotate_sample(sample, WorkerKey(1, "urgency"), worker="w")
    outcome = Outcome.objects.get()
    assert (outcome.cache_read_tokens, outcome.cache_write_tokens) == (600, 300)
    # 100 plain x 1.0 + 600 read x 0.1 + 300 written x 1.25 + 100 out x 2.0, per 1,000
    assert outcome.cost == Decimal("0.735")
    [total] = cost_totals(annotator=1, domain="urgency")
    assert (total.cache_read_tokens, total.cache_write_tokens, total.cost) == (600, 300, Decimal("0.735"))


def test_prompt_cache_tokens_without_a_cache_price_cost_the_input_price_never_zero(http_annotator, fake_llm):
    _price()
    fake_llm.default = Reply(content="<<LEVEL_1>>", usage={"prompt_tokens": 1000, "completion_tokens": 100,
                                                           "prompt_cache_hit_tokens": 900})  # DeepSeek's name
    [sample] = make_samples(1)
    annotate_sample(sample, WorkerKey(1, "urgency"), worker="w")
    outcome = Outcome.objects.get()
    assert outcome.cache_read_tokens == 900 and outcome.cost == Decimal("1.2")  # as if there were no cache


def test_cache_tokens_reported_apart_from_the_prompt_tokens_are_added_on_top(http_annotator, fake_llm):
    _price(cache_read_per_1k=Decimal("0.1"))
    fake_llm.default = Reply(content="<<LEVEL_1>>", usage={"prompt_tokens": 10, "completion_tokens": 0,
                                                           "cache_read_input_tokens": 5000})
    [sample] = make_samples(1)
    annotate_sample(sample, WorkerKey(1, "urgency"), worker="w")
    assert Outcome.objects.get().cost == Decimal("0.51")  # 10 x 1.0 + 5000 x 0.1, per 1,000


# ---------------------------------------------------------------------------------------------- the admin


def test_the_domain_admin_shows_the_derived_schema_and_grammar_read_only(catalogue, staff, client):
    client.force_login(staff)
    adjunct = Domain.objects.get(slug="adjunct")
    page = client.get(f"/admin/workers_app/domain/{adjunct.pk}/change/").content.decode()
    assert '<pre class="answer-schema">' in page and "&quot;anyOf&quot;" in page and "ADJ-8" in page
    assert '<pre class="answer-grammar">' in page and "from0 ::= " in page
    assert 'name="answer_schema"' not in page and 'name="schema_version"' not in page  # shown, not edited
    listing = client.get("/admin/workers_app/domain/").content.decode()
    assert "schema version" in listing.lower()
    # the add page has nothing to derive yet, and says so instead of failing
    assert "shown once they are valid" in client.get("/admin/workers_app/domain/add/").content.decode()


def test_the_annotator_admin_sets_the_structured_mode_and_shows_a_refusal(http_annotator, staff, client):
    Annotator.objects.filter(number=1).update(structured_refused="the server refuses structured output 'grammar'")
    client.force_login(staff)
    page = client.get(f"/admin/workers_app/annotator/{http_annotator.pk}/change/").content.decode()
    assert 'name="structured"' in page and 'name="structured_fallback"' in page
    assert "the server refuses structured output &#x27;grammar&#x27;" in page
    assert 'name="structured_refused"' not in page  # recorded by the workers, cleared by an action, never typed
