from __future__ import annotations

import csv
import json

import openpyxl
import pytest
from django.core.management import call_command
from django.utils import timezone

from admin_ops.services.consolidate import consolidate
from tests.helpers import make_samples
from workers_app.models import Annotator, Domain, Outcome, Sample
from workers_app.runs.current import current_run

pytestmark = pytest.mark.django_db


def store(sample_id: int, annotator: int, slug: str, labels: list[str] | None) -> None:
    Outcome.objects.create(run=current_run(), sample_id=sample_id, annotator=Annotator.objects.get(number=annotator),
                           domain=Domain.objects.get(slug=slug), status="ok" if labels is not None else "malformed",
                           labels=labels or [], reason="" if labels is not None else "no_marker",
                           prompt_version=1, started_at=timezone.now(), latency_ms=100, prompt_tokens=10,
                           completion_tokens=2)


@pytest.fixture
def labelled(catalogue):
    calm, urgent, split = make_samples(3, vary=True)
    Sample.objects.filter(pk=calm).update(external_id="=HYPERLINK(\"x\")")
    for annotator in range(1, 6):
        store(calm, annotator, "urgency", ["LEVEL_1"])
        store(urgent, annotator, "urgency", ["LEVEL_4"] if annotator == 1 else ["LEVEL_3"])
        store(split, annotator, "urgency", ["LEVEL_0"] if annotator < 3 else None if annotator == 3 else ["LEVEL_2"])
        store(calm, annotator, "adjunct", ["NONE"] if annotator != 5 else ["ADJ-4"])
    return calm, urgent, split


def test_the_consolidated_workbook_has_a_sheet_per_domain_and_the_research_sheets(labelled, tmp_path):
    report = consolidate(tmp_path / "all.xlsx", actor="test")
    book = openpyxl.load_workbook(report.path)
    assert book.sheetnames == ["Run", "urgency", "therapeutic", "intensity", "adjunct", "modality", "redressal", "Summary",
                               "Agreement", "Review"]
    urgency = list(book["urgency"].iter_rows(values_only=True))
    assert urgency[0][:3] == ("sample id", "annotator 1 label", "annotator 1 status")
    assert urgency[1][0] == '=HYPERLINK("x")' and book["urgency"]["A2"].data_type == "s"
    assert urgency[1][-4:-2] == ("LEVEL_1", "yes")


def test_the_review_sheet_lists_level_4_and_labels_two_levels_apart(labelled, tmp_path):
    _, urgent, split = labelled
    report = consolidate(tmp_path / "all.xlsx", actor="test")
    review = list(openpyxl.load_workbook(report.path)["Review"].iter_rows(values_only=True))[1:]
    reasons = {row[0]: row[1] for row in review}
    ids = dict(Sample.objects.values_list("pk", "external_id"))
    assert reasons == {ids[urgent]: "LEVEL_4 given", ids[split]: "labels 2 levels apart"}


def test_a_malformed_answer_is_missing_not_a_category(labelled, tmp_path):
    report = consolidate(tmp_path / "all.xlsx", actor="test")
    split_row = list(openpyxl.load_workbook(report.path)["urgency"].iter_rows(values_only=True))[3]
    assert split_row[5:7] == (None, "malformed")  # annotator 3: empty label, malformed status
    summary = {(r[0], r[1]): r for r in openpyxl.load_workbook(report.path)["Summary"].iter_rows(values_only=True)}
    assert summary[("urgency", 3)][3] == 1  # one malformed outcome counted for annotator 3


def test_the_agreement_sheet_holds_alpha_with_an_interval_and_kappa(labelled, tmp_path):
    report = consolidate(tmp_path / "all.xlsx", actor="test")
    rows = list(openpyxl.load_workbook(report.path)["Agreement"].iter_rows(values_only=True))
    ordinal = next(r for r in rows if r[:2] == ("urgency", "ordinal"))
    assert ordinal[2] is not None and ordinal[3] <= ordinal[2] <= ordinal[4]
    assert any(r[0] == "urgency: Cohen's kappa (quadratic weights)" for r in rows)
    assert any(r[:2] == ("adjunct", "masi") for r in rows)


def test_csv_and_jsonl_copies_hold_one_row_per_sample_and_domain(labelled, tmp_path):
    report = consolidate(tmp_path / "all.xlsx", actor="test")
    with report.csv_path.open() as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 3 * 6 and rows[0]["domain"] == "urgency"
    records = [json.loads(line) for line in report.jsonl_path.read_text().splitlines()]
    assert len(records) == 18 and records[0]["all_agree"] is True


def test_the_command_reports_the_review_count(labelled, tmp_path, capsys):
    call_command("consolidate", str(tmp_path / "c.xlsx"))
    assert "2 sample(s) on the Review sheet" in capsys.readouterr().out


def test_the_agreement_sheet_holds_fleiss_kappa_beside_alpha(labelled, tmp_path):
    report = consolidate(tmp_path / "all.xlsx", actor="test")
    rows = list(openpyxl.load_workbook(report.path)["Agreement"].iter_rows(values_only=True))
    start = rows.index(("domain", "measure", "Fleiss' kappa", "95 % CI low", "95 % CI high", "units"))
    fleiss = {(r[0], r[1]): r for r in rows[start + 1:] if r and r[0] in ("urgency", "adjunct")}
    urgency = fleiss[("urgency", "nominal")]
    assert urgency[5] == 3 and urgency[2] is not None and urgency[3] <= urgency[2] <= urgency[4]
    assert {measure for domain, measure in fleiss if domain == "adjunct"} == {
        f"binary:{code}" for code in Domain.objects.get(slug="adjunct").code_list}


def test_the_summary_sheet_gives_cost_cache_hits_and_money_saved(labelled, tmp_path):
    from decimal import Decimal

    from workers_app.models import AnnotatorPrice

    AnnotatorPrice.objects.create(annotator=Annotator.objects.get(number=1), input_per_1k=Decimal("1.00"),
                                  output_per_1k=Decimal("2.00"), currency="EUR")
    first = Outcome.objects.filter(annotator__number=1, domain__slug="urgency").order_by("id")
    first.update(cost=Decimal("0.014"))  # 10 prompt and 2 completion tokens at 1 and 2 EUR per 1,000
    Outcome.objects.filter(pk=first[0].pk).update(cached=True, cost=Decimal(0))
    report = consolidate(tmp_path / "all.xlsx", actor="test")
    rows = list(openpyxl.load_workbook(report.path)["Summary"].iter_rows(values_only=True))
    assert rows[0][8:] == ("cost", "currency", "cached answers", "money saved by the cache")
    summary = {(r[0], r[1]): r for r in rows[1:]}
    assert summary[("urgency", 1)][8:] == (pytest.approx(0.028), "EUR", 1, pytest.approx(0.014))
    assert summary[("urgency", 2)][8:] == (None, None, 0, None)  # no price: the cost is unknown, not zero


def test_each_annotators_confidence_stands_beside_its_label_where_the_outcome_has_one(labelled, tmp_path):
    calm, urgent, split = labelled
    Outcome.objects.filter(sample_id=calm, annotator__number=2, domain__slug="urgency").update(confidence=0.87)
    Outcome.objects.filter(sample_id=urgent, annotator__number=5, domain__slug="urgency").update(confidence=0.31)
    book = openpyxl.load_workbook(consolidate(tmp_path / "all.xlsx", actor="test").path)
    rows = list(book["urgency"].iter_rows(values_only=True))
    assert rows[0][:7] == ("sample id", "annotator 1 label", "annotator 1 status", "annotator 1 confidence",
                           "annotator 2 label", "annotator 2 status", "annotator 2 confidence")
    by_id = {row[0]: dict(zip(rows[0], row, strict=True)) for row in rows[1:]}
    ids = dict(Sample.objects.values_list("pk", "external_id"))
    assert by_id[ids[calm]]["annotator 2 label"] == "LEVEL_1"
    assert by_id[ids[calm]]["annotator 2 confidence"] == pytest.approx(0.87)
    assert by_id[ids[urgent]]["annotator 5 confidence"] == pytest.approx(0.31)
    assert by_id[ids[calm]]["annotator 1 confidence"] is None  # no confidence stored: the cell stays empty
    assert by_id[ids[split]]["annotator 3 status"] == "malformed" and by_id[ids[split]]["annotator 3 confidence"] is None
    # A domain whose labels have no confidence keeps its columns as they were.
    assert "annotator 1 confidence" not in next(book["adjunct"].iter_rows(values_only=True))
