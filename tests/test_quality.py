"""The quality of a run against a reference set, from the store: the figures per annotator equal scikit-learn's on
the same labels, the consensus rows, malformed and refused shares, the worst items, the Alternative Annotator Test
with three raters, the command, the workbook's Quality sheet, the run comparison; and end to end on the psychiatrists'
labels of the Reddit C-SSRS dataset (Gaur et al., WWW 2019, CC BY 4.0)."""

from __future__ import annotations

import csv
import json
import random
import re

import openpyxl
import pytest
from django.core.management import call_command
from sklearn.metrics import accuracy_score, cohen_kappa_score, f1_score

from admin_ops.services.consolidate import consolidate
from tests.helpers import SHARED_DATASETS, make_reference, make_samples, store_outcome
from workers_app.engine.parsing import REFUSAL
from workers_app.models import Outcome, ReferenceLabel, ReferenceSet, Sample
from workers_app.references.quality import run_quality
from workers_app.runs.compare import compare_runs
from workers_app.runs.current import current_run
from workers_app.runs.services import RunPlan, create_run

pytestmark = pytest.mark.django_db

LEVELS = ["LEVEL_0", "LEVEL_1", "LEVEL_2", "LEVEL_3", "LEVEL_4"]
CSSRS = SHARED_DATASETS / "cssrs_reddit_dev_250.csv"
CSSRS_MAP = {"Supportive": "LEVEL_0", "Indicator": "LEVEL_1", "Ideation": "LEVEL_2", "Behavior": "LEVEL_3",
             "Attempt": "LEVEL_4"}


@pytest.fixture
def scored(catalogue):
    """40 samples; a reference of urgency; annotator 1 right 3 times in 4, annotator 2 guessing, annotator 3 with
    5 malformed answers of which 2 refusals."""
    rng = random.Random(3)
    samples = make_samples(40, vary=True)
    run = current_run()
    truth = {s: rng.choice(LEVELS) for s in samples}
    given = {1: {s: truth[s] if rng.random() < 0.75 else rng.choice(LEVELS) for s in samples},
             2: {s: rng.choice(LEVELS) for s in samples}, 3: {s: truth[s] for s in samples}}
    for number, labels in given.items():
        for index, sample in enumerate(samples):
            if number == 3 and index < 5:
                outcome = store_outcome(run, sample, 3, "urgency", [], status="malformed")
                if index < 2:
                    Outcome.objects.filter(pk=outcome.pk).update(reason=REFUSAL)
            else:
                store_outcome(run, sample, number, "urgency", [labels[sample]])
    reference = make_reference("gold", {(s, "urgency", ""): [truth[s]] for s in samples})
    return run, reference, samples, truth, given


def test_each_annotators_figures_equal_scikit_learns(scored):
    run, reference, samples, truth, given = scored

    found = run_quality(run, reference)

    [urgency] = found.domains
    rows = {row.name: row for row in urgency.rows}
    assert list(rows) == ["annotator 1", "annotator 2", "annotator 3", "majority vote", "Dawid–Skene"]
    for number in (1, 2):
        result = rows[f"annotator {number}"].result
        t, g = [truth[s] for s in samples], [given[number][s] for s in samples]
        assert result.n == 40
        assert result.accuracy.value == pytest.approx(accuracy_score(t, g))
        assert result.macro_f1.value == pytest.approx(f1_score(t, g, average="macro", zero_division=0))
        assert result.kappa.value == pytest.approx(cohen_kappa_score(t, g, labels=LEVELS, weights="quadratic"))
        assert result.accuracy.ci95.low < result.accuracy.value < result.accuracy.ci95.high
    third = rows["annotator 3"]
    assert (third.result.n, third.result.accuracy.value, third.answered) == (35, 1.0, 40)
    assert third.malformed.value == pytest.approx(5 / 40) and third.refused.value == pytest.approx(2 / 40)
    assert rows["annotator 1"].malformed.value == 0.0
    assert found.bootstrap == 1000 and urgency.reference_items == 40 and urgency.most_raters == 1
    assert urgency.alt_tests == []  # one rater: no test


def test_the_worst_items_are_those_furthest_off_and_link_to_samples(scored):
    run, reference, _samples, _truth, _given = scored

    worst = run_quality(run, reference).domains[0].rows[1].worst  # annotator 2, guessing

    distances = [w.distance for w in worst]
    assert distances == sorted(distances, reverse=True) and distances[0] >= 3
    first = worst[0]
    sample = Sample.objects.get(pk=first.sample_id)
    assert first.external_id == sample.external_id
    assert abs(LEVELS.index(first.given) - LEVELS.index(first.reference)) == first.distance


def test_with_three_raters_per_item_the_alternative_annotator_test_runs(catalogue):
    rng = random.Random(5)
    samples = make_samples(60, vary=True)
    run = current_run()
    truth = {s: rng.choice(LEVELS) for s in samples}
    labels = {}
    for s in samples:
        for rater in ("ann", "bea", "cal"):
            labels[(s, "urgency", rater)] = [truth[s] if rng.random() < 0.7 else rng.choice(LEVELS)]
        store_outcome(run, s, 1, "urgency", [truth[s] if rng.random() < 0.9 else rng.choice(LEVELS)])
        store_outcome(run, s, 2, "urgency", [rng.choice(LEVELS)])
    reference = make_reference("crowd", labels, kind="crowd")

    [urgency] = run_quality(run, reference).domains

    assert urgency.most_raters == 3 and urgency.rows[0].result.n == 180
    tests = {t.annotator: t.result for t in urgency.alt_tests}
    assert tests[1].passed and tests[1].epsilon == 0.1 and tests[1].tested == 3
    assert not tests[2].passed and tests[2].winning_rate == 0.0


def test_a_code_set_domain_uses_the_masi_kappa(catalogue):
    samples = make_samples(6, vary=True)
    run = current_run()
    sets = [["TA-1"], ["TA-1", "TA-5"], ["TA-2"], ["TA-3"], ["TA-1"], ["TA-9"]]
    for index, sample in enumerate(samples):
        store_outcome(run, sample, 1, "therapeutic", sets[index] if index % 2 else ["TA-1"])
    reference = make_reference("sets", {(s, "therapeutic", ""): sets[i] for i, s in enumerate(samples)})

    [domain] = run_quality(run, reference).domains

    result = domain.rows[0].result
    assert result.kappa_weights == "masi" and result.confusion == ()
    assert result.accuracy.value == pytest.approx(5 / 6)  # only the third (TA-1 for TA-2) is wrong
    assert [c.label for c in result.per_class][:3] == ["TA-1", "TA-2", "TA-3"]


def test_a_reference_of_other_samples_has_nothing_in_common(catalogue):
    first, second = make_samples(3), make_samples(3)
    store_outcome(current_run(), first[0], 1, "urgency", ["LEVEL_1"])
    run = create_run(RunPlan(name="small", limit=1), actor="test")
    reference = make_reference("elsewhere", {(second[0], "urgency", ""): ["LEVEL_1"]})

    assert run_quality(run, reference).nothing_in_common.startswith("Nothing in common")


def test_the_command_prints_the_table_and_the_json(scored, capsys):
    call_command("quality", "--reference", "gold", "--bootstrap", "200")
    out = capsys.readouterr().out
    assert "run default against reference set gold (expert)" in out
    assert re.search(r"annotator 3 +35 +1\.000 \[1\.000, 1\.000\]", out), out
    assert "majority vote" in out and "Dawid–Skene" in out

    call_command("quality", "--run", "default", "--reference", "gold", "--json")
    document = json.loads(capsys.readouterr().out)
    [urgency] = document["domains"]
    first = urgency["rows"][0]
    assert (first["name"], first["n"], len(first["confusion"]["labels"])) == ("annotator 1", 40, 5)
    assert first["accuracy"]["ci95"][0] < first["accuracy"]["value"] < first["accuracy"]["ci95"][1]
    assert sum(map(sum, first["confusion"]["rows_reference_columns_given"])) == 40


def test_the_command_refuses_an_unknown_set(scored):
    with pytest.raises(Exception, match="no reference set named 'ghost'; the sets are gold"):
        call_command("quality", "--reference", "ghost")


def test_the_consolidated_workbook_has_a_quality_sheet_against_the_chosen_set(scored, tmp_path):
    _run, reference, *_ = scored

    report = consolidate(tmp_path / "c.xlsx", actor="test", reference=reference)

    sheet = openpyxl.load_workbook(report.path, read_only=True)["Quality"]
    rows = [row for row in sheet.iter_rows(values_only=True)]
    assert rows[0][0] == "Quality of run default against reference set gold"
    header = next(row for row in rows if row and row[0] == "domain" and row[1] == "labeller")
    first = rows[rows.index(header) + 1]
    assert first[:4] == ("urgency", "annotator 1", 40, 40)
    assert any(row and str(row[0]).startswith("urgency: annotator 1 (rows: reference") for row in rows)


def test_without_a_chosen_set_or_adjudications_there_is_no_quality_sheet(scored, tmp_path):
    report = consolidate(tmp_path / "c.xlsx", actor="test")
    assert "Quality" not in openpyxl.load_workbook(report.path, read_only=True).sheetnames


def test_the_run_comparison_gains_each_runs_accuracy_against_the_set(scored):
    run, reference, samples, truth, given = scored
    second = create_run(RunPlan(name="second", annotators=[1], domains=["urgency"]), actor="test")
    for sample in samples:
        store_outcome(second, sample, 1, "urgency", [truth[sample]])

    found = compare_runs(run, second, reference=reference)

    [pair] = found.pairs
    assert pair.accuracy_a.value == pytest.approx(accuracy_score([truth[s] for s in samples],
                                                                 [given[1][s] for s in samples]))
    assert (pair.accuracy_b.value, pair.reference_n_a, pair.reference_n_b) == (1.0, 40, 40)


@pytest.mark.skipif(not CSSRS.exists(), reason=f"{CSSRS} is absent: the expert-labelled C-SSRS data set is not on "
                                                "this machine")
def test_end_to_end_on_the_psychiatrists_labels_of_the_cssrs_dataset(catalogue, capsys):
    """Gaur et al., "Knowledge-aware Assessment of Severity of Suicide Risk for Early Intervention", WWW 2019
    (CC BY 4.0): the development half, imported as a corpus and as a reference set through the commands."""
    call_command("import_corpus", str(CSSRS), "--id-column", "User", "--text-column", "Post")
    call_command("reference", "import", str(CSSRS), "--name", "cssrs", "--id-column", "User", "--label-column",
                 "urgency=Label", *[f"--map=urgency:{v}={c}" for v, c in CSSRS_MAP.items()],
                 "--citation", "Gaur et al., WWW 2019", "--licence", "CC BY 4.0")
    assert "reference set cssrs: 250 label(s) (urgency 250)." in capsys.readouterr().out
    with CSSRS.open(newline="", encoding="utf-8") as handle:
        expected = {row["User"]: CSSRS_MAP[row["Label"]] for row in csv.DictReader(handle)}
    stored = dict(ReferenceLabel.objects.filter(reference_set__name="cssrs").values_list("sample__external_id",
                                                                                       "labels__0"))
    assert stored == expected
    run = current_run()
    ids = dict(Sample.objects.values_list("external_id", "pk"))
    # A labeller that says LEVEL_2 for everyone: the figures must be those of that constant guess.
    for external_id in expected:
        store_outcome(run, ids[external_id], 1, "urgency", ["LEVEL_2"])

    [urgency] = run_quality(run, ReferenceSet.objects.get(name="cssrs"), bootstrap=200).domains

    result = urgency.rows[0].result
    truth = list(expected.values())
    assert result.n == 250
    assert result.accuracy.value == pytest.approx(accuracy_score(truth, ["LEVEL_2"] * 250))
    assert result.kappa.value is None or result.kappa.value == pytest.approx(0.0)
