"""State documents carry each annotator's budget and response-cache setting, the price versions and the run
definitions, each annotator's request_logprobs and each domain's review thresholds; an import brings them back
(never changing which run is current), and documents of versions 1 to 3 still import."""

from __future__ import annotations

import json
from datetime import date
from decimal import Decimal

import pytest

from admin_ops.services.state import StateError, export_state, import_state
from tests.helpers import make_samples
from workers_app.engine.api_keys import set_api_key
from workers_app.models import DEFAULT_RUN, Annotator, AnnotatorPrice, Domain, Run
from workers_app.runs.current import current_run
from workers_app.runs.services import RunPlan, create_run, delete_run, switch_run

pytestmark = pytest.mark.django_db

SECRET = "sk-proj-the-real-key-0123456789"


@pytest.fixture
def priced(catalogue, fake_llm) -> Annotator:
    """Annotator 1 on an OpenAI-compatible server at temperature 0, cached, with a budget, two price versions and a
    key; a run 'pilot' of two samples."""
    annotator = Annotator.objects.get(number=1)
    annotator.backend, annotator.base_url, annotator.model = "openai_compatible", fake_llm.url, "fake-model"
    annotator.cache_responses, annotator.budget = True, Decimal("12.5")
    annotator.save()
    set_api_key(annotator, SECRET, actor="test")
    for valid_from, price in ((date(2026, 1, 1), "0.001"), (date(2026, 3, 1), "0.0015")):
        AnnotatorPrice.objects.create(annotator=annotator, valid_from=valid_from, input_per_1k=Decimal(price),
                                      output_per_1k=Decimal("0.002"), currency="EUR")
    make_samples(4, vary=True)
    current_run()  # the default run, made on first use where the migration's is gone (a flushed test database)
    create_run(RunPlan(name="pilot", description="a trial", annotators=[1], domains=["urgency"], limit=2,
                       budget=Decimal(3)), actor="test")
    return annotator


def test_a_state_export_carries_budgets_the_cache_prices_and_runs_and_never_a_key(priced):
    text = export_state(actor="test", target="memory")
    document = json.loads(text)

    first = document["catalogue"]["annotators"][0]
    assert (first["budget"], first["cache_responses"]) == ("12.5000", True)
    assert document["prices"] == [
        {"annotator": 1, "valid_from": "2026-01-01", "input_per_1k": "0.001000", "output_per_1k": "0.002000",
         "cache_read_per_1k": None, "cache_write_per_1k": None, "currency": "EUR",
         "batch_percent": "50.00"},
        {"annotator": 1, "valid_from": "2026-03-01", "input_per_1k": "0.001500", "output_per_1k": "0.002000",
         "cache_read_per_1k": None, "cache_write_per_1k": None, "currency": "EUR",
         "batch_percent": "50.00"}]
    pilot = next(run for run in document["runs"] if run["name"] == "pilot")
    assert (pilot["description"], pilot["budget"], pilot["annotators"], len(pilot["samples"])) == (
        "a trial", "3.0000", [1], 2)
    assert pilot["pinned"]["annotators"]["1"]["model"] == "fake-model"
    stored = Annotator.objects.values_list("api_key_encrypted", flat=True).get(number=1)
    assert SECRET not in text and stored not in text and "api_key_encrypted" not in text


def test_an_import_brings_back_budgets_the_cache_prices_and_runs(priced):
    text = export_state(actor="test", target="memory")
    Annotator.objects.filter(number=1).update(budget=Decimal(1), cache_responses=False)
    AnnotatorPrice.objects.filter(valid_from=date(2026, 3, 1)).delete()
    AnnotatorPrice.objects.filter(valid_from=date(2026, 1, 1)).update(input_per_1k=Decimal("0.9"))
    pilot = Run.objects.get(name="pilot")
    members = sorted(pilot.samples.values_list("external_id", flat=True))
    pinned = pilot.pinned
    delete_run(pilot, actor="test")

    plan = import_state(text, source="state.json", actor="test", dry_run=True)

    assert {"annotator 1.budget: '1.0000' -> '12.5000'", "annotator 1.cache_responses: False -> True",
            "price of annotator 1 from 2026-03-01: new", "run pilot: new",
            "price of annotator 1 from 2026-01-01.input_per_1k: '0.900000' -> '0.001000'"} <= set(plan.changes)
    assert not Run.objects.filter(name="pilot").exists()  # a dry run changes nothing

    import_state(text, source="state.json", actor="test")

    annotator = Annotator.objects.get(number=1)
    assert (annotator.budget, annotator.cache_responses) == (Decimal("12.5"), True)
    assert list(AnnotatorPrice.objects.order_by("valid_from").values_list("input_per_1k", "currency")) == [
        (Decimal("0.001"), "EUR"), (Decimal("0.0015"), "EUR")]
    back = Run.objects.get(name="pilot")
    assert (back.description, back.budget, back.pinned, back.is_current) == ("a trial", Decimal(3), pinned, False)
    assert sorted(back.samples.values_list("external_id", flat=True)) == members
    assert import_state(text, source="state.json", actor="test").changes == []


def test_an_import_changes_a_runs_description_and_budget_but_never_the_current_run(priced):
    pilot = Run.objects.get(name="pilot")
    switch_run(pilot, actor="test")
    document = json.loads(export_state(actor="test", target="memory"))
    switch_run(Run.objects.get(name=DEFAULT_RUN), actor="test")
    spec = next(run for run in document["runs"] if run["name"] == "pilot")
    spec.update(description="the second trial", budget="4.5")

    plan = import_state(json.dumps(document), source="state.json", actor="test")

    assert "run pilot.description: 'a trial' -> 'the second trial'" in plan.changes
    pilot.refresh_from_db()
    assert (pilot.description, pilot.budget, pilot.is_current) == ("the second trial", Decimal("4.5"), False)
    assert Run.objects.get(is_current=True).name == DEFAULT_RUN


def test_a_version_1_document_still_imports_and_keeps_budgets_prices_and_runs(priced):
    document = json.loads(export_state(actor="test", target="memory"))
    document["version"] = 1
    del document["prices"], document["runs"]
    for annotator in document["catalogue"]["annotators"]:
        del annotator["budget"], annotator["cache_responses"], annotator["structured"], annotator["structured_fallback"]
    _before_version_4(document)
    document["catalogue"]["annotators"][1]["model"] = "changed-by-an-old-file"

    plan = import_state(json.dumps(document), source="old.json", actor="test")

    assert plan.changes == ["annotator 2.model: 'builtin-lexicon-v1' -> 'changed-by-an-old-file'"]
    annotator = Annotator.objects.get(number=1)
    assert (annotator.budget, annotator.cache_responses) == (Decimal("12.5"), True)
    assert AnnotatorPrice.objects.count() == 2 and Run.objects.filter(name="pilot").exists()


def test_a_state_document_carries_the_structured_mode_and_the_prompt_cache_prices(priced):
    Annotator.objects.filter(number=1).update(structured="json_schema", structured_fallback=True)
    AnnotatorPrice.objects.filter(valid_from=date(2026, 3, 1)).update(cache_read_per_1k=Decimal("0.00015"))
    document = json.loads(export_state(actor="test", target="memory"))
    assert document["version"] == 4
    first = document["catalogue"]["annotators"][0]
    assert (first["structured"], first["structured_fallback"]) == ("json_schema", True)
    assert (document["prices"][1]["cache_read_per_1k"], document["prices"][1]["cache_write_per_1k"]) == (
        "0.000150", None)
    # Another console's settings come in with the document, checked by the fields' own rules.
    Annotator.objects.filter(number=1).update(structured="none", structured_fallback=False)
    AnnotatorPrice.objects.update(cache_read_per_1k=None)
    plan = import_state(json.dumps(document), source="state.json", actor="test")
    assert "annotator 1.structured: 'none' -> 'json_schema'" in plan.changes
    assert Annotator.objects.get(number=1).structured == "json_schema"
    assert AnnotatorPrice.objects.get(valid_from=date(2026, 3, 1)).cache_read_per_1k == Decimal("0.00015")
    first["structured"] = "yaml"
    with pytest.raises(StateError, match=r"catalogue.annotators\[0\].structured: Value 'yaml' is not a valid choice"):
        import_state(json.dumps(document), source="state.json", actor="test")


def test_a_state_document_carries_batch_mode_and_each_prices_batch_discount(priced):
    Annotator.objects.filter(number=1).update(mode="batch", batch_protocol="anthropic", batch_size=200)
    AnnotatorPrice.objects.filter(valid_from=date(2026, 3, 1)).update(batch_percent=Decimal(40))
    document = json.loads(export_state(actor="test", target="memory"))
    first = document["catalogue"]["annotators"][0]
    assert (first["mode"], first["batch_protocol"], first["batch_size"]) == ("batch", "anthropic", 200)
    assert [p["batch_percent"] for p in document["prices"]] == ["50.00", "40.00"]
    Annotator.objects.filter(number=1).update(mode="live", batch_protocol="openai", batch_size=500)
    AnnotatorPrice.objects.update(batch_percent=Decimal(50))

    plan = import_state(json.dumps(document), source="state.json", actor="test")

    assert "annotator 1.mode: 'live' -> 'batch'" in plan.changes
    annotator = Annotator.objects.get(number=1)
    assert (annotator.mode, annotator.batch_protocol, annotator.batch_size) == ("batch", "anthropic", 200)
    assert AnnotatorPrice.objects.get(valid_from=date(2026, 3, 1)).batch_percent == Decimal(40)


def test_a_version_2_document_still_imports_and_keeps_the_structured_mode_and_cache_prices(priced):
    Annotator.objects.filter(number=1).update(structured="grammar")
    AnnotatorPrice.objects.update(cache_write_per_1k=Decimal("0.00125"))
    document = json.loads(export_state(actor="test", target="memory"))
    document["version"] = 2
    for annotator in document["catalogue"]["annotators"]:
        del annotator["structured"], annotator["structured_fallback"]
    _before_version_4(document)
    for price in document["prices"]:
        del price["cache_read_per_1k"], price["cache_write_per_1k"]
    assert import_state(json.dumps(document), source="v2.json", actor="test").changes == []
    assert Annotator.objects.get(number=1).structured == "grammar"
    assert set(AnnotatorPrice.objects.values_list("cache_write_per_1k", flat=True)) == {Decimal("0.00125")}


def _before_version_4(document: dict) -> None:
    """Takes out what version 4 added (an earlier deletion of some of it is fine)."""
    for annotator in document["catalogue"]["annotators"]:
        for name in ("request_logprobs", "answers_per_item", "mode", "batch_protocol", "batch_size"):
            annotator.pop(name, None)
    for domain in document["catalogue"]["domains"]:
        del domain["review_below_confidence"], domain["review_below_agreement"]
    for price in document.get("prices", []):
        del price["batch_percent"]


def _set_confidence_routing(logprobs: bool, confidence: float | None, agreement: float | None) -> None:
    Annotator.objects.filter(number=1).update(request_logprobs=logprobs)
    Domain.objects.filter(slug="urgency").update(review_below_confidence=confidence, review_below_agreement=agreement)


def _confidence_routing() -> tuple:
    return (Annotator.objects.get(number=1).request_logprobs,
            *Domain.objects.filter(slug="urgency").values_list("review_below_confidence", "review_below_agreement")
            .get())


def test_a_state_document_carries_request_logprobs_and_the_review_thresholds(priced):
    _set_confidence_routing(True, 0.6, 0.75)
    document = json.loads(export_state(actor="test", target="memory"))
    assert document["version"] == 4
    assert document["catalogue"]["annotators"][0]["request_logprobs"] is True
    urgency = next(d for d in document["catalogue"]["domains"] if d["slug"] == "urgency")
    assert (urgency["review_below_confidence"], urgency["review_below_agreement"]) == (0.6, 0.75)
    # Another console's settings come in with the document, each change listed.
    _set_confidence_routing(False, None, 0.5)
    plan = import_state(json.dumps(document), source="state.json", actor="test")
    assert {"annotator 1.request_logprobs: False -> True", "domain urgency.review_below_confidence: None -> 0.6",
            "domain urgency.review_below_agreement: 0.5 -> 0.75"} <= set(plan.changes)
    assert _confidence_routing() == (True, 0.6, 0.75)
    # A threshold switched off travels as null and switches it off.
    urgency["review_below_agreement"] = None
    import_state(json.dumps(document), source="state.json", actor="test")
    assert _confidence_routing() == (True, 0.6, None)


def test_a_version_3_document_still_imports_and_keeps_request_logprobs_and_the_thresholds(priced):
    _set_confidence_routing(True, 0.4, 0.8)
    document = json.loads(export_state(actor="test", target="memory"))
    document["version"] = 3
    _before_version_4(document)
    _set_confidence_routing(False, 0.2, None)  # what the console has when the old file comes in
    assert import_state(json.dumps(document), source="v3.json", actor="test").changes == []
    assert _confidence_routing() == (False, 0.2, None)


def test_a_refused_threshold_changes_nothing_of_the_rest_of_the_document(priced):
    document = json.loads(export_state(actor="test", target="memory"))
    document["catalogue"]["annotators"][0]["request_logprobs"] = True
    document["catalogue"]["domains"][0]["title"] = "Renamed"
    document["catalogue"]["domains"][1]["review_below_confidence"] = 2
    with pytest.raises(StateError, match=r"catalogue.domains\[1\].review_below_confidence: Ensure this value is "
                                         r"less than or equal to 1.0"):
        import_state(json.dumps(document), source="state.json", actor="test")
    assert not Annotator.objects.get(number=1).request_logprobs
    assert not Domain.objects.filter(title="Renamed").exists()


def test_a_price_of_an_impossible_date_is_refused_naming_the_field_and_why(priced):
    document = json.loads(export_state(actor="test", target="memory"))
    document["prices"][0]["valid_from"] = "2026-02-30"

    with pytest.raises(StateError, match=r"prices\[0\].valid_from: .*2026-02-30.* it is an invalid date"):
        import_state(json.dumps(document), source="state.json", actor="test")


def test_the_export_command_counts_the_prices_and_runs_it_wrote(priced, tmp_path, capsys):
    from django.core.management import call_command

    call_command("export_state", str(tmp_path / "state.json"))

    assert "2 price versions, 2 runs" in capsys.readouterr().out
    assert len(json.loads((tmp_path / "state.json").read_text())["runs"]) == 2
