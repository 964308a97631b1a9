"""Calibration against a reference set: the reliability bins and the expected calibration error on a hand-worked
example, and the table in the quality command (text and --json) and on /quality/ where outcomes have confidences."""

from __future__ import annotations

import json

import pytest
from django.core.management import call_command

from stats.calibration import calibration
from tests.browser.conftest import make_staff
from tests.helpers import make_samples, store_outcome
from workers_app.models import Outcome, Sample
from workers_app.references.importer import import_reference
from workers_app.references.options import Layout
from workers_app.runs.current import current_run

# 8 labels: 0.05 wrong | 0.15 wrong, 0.15 right | 0.95 right x3, 0.95 wrong, 1.0 right.
CONFIDENCES = [0.05, 0.15, 0.15, 0.95, 0.95, 0.95, 0.95, 1.0]
CORRECT = [False, False, True, True, True, True, False, True]
# By hand: bin 0: 1 label, confidence 0.05, accuracy 0 -> gap 0.05; bin 1: 2 labels, 0.15, accuracy 0.5 -> 0.35;
# bin 9: 5 labels, confidence (4 x 0.95 + 1.0) / 5 = 0.96, accuracy 4/5 = 0.8 -> 0.16.
# ECE = (1 x 0.05 + 2 x 0.35 + 5 x 0.16) / 8 = 1.55 / 8 = 0.19375.
ECE = 0.19375


def test_the_bins_and_the_ece_equal_the_hand_worked_example():
    found = calibration(CONFIDENCES, CORRECT)
    assert found.n == 8 and found.ece == pytest.approx(ECE)
    filled = {index: (b.count, b.mean_confidence, b.accuracy) for index, b in enumerate(found.bins) if b.count}
    assert filled == {0: (1, pytest.approx(0.05), 0.0), 1: (2, pytest.approx(0.15), 0.5),
                      9: (5, pytest.approx(0.96), 0.8)}
    assert [(b.low, b.high) for b in found.bins][:2] == [(0.0, 0.1), (0.1, 0.2)] and len(found.bins) == 10
    assert all(b.mean_confidence is None and b.accuracy is None for b in found.bins if not b.count)


def test_bin_edges_belong_to_the_bin_above_and_one_to_the_last():
    found = calibration([0.0, 0.1, 0.5, 0.9, 1.0], [True] * 5)
    assert [b.count for b in found.bins] == [1, 1, 0, 0, 0, 1, 0, 0, 0, 2]


def test_a_perfectly_calibrated_annotator_scores_zero_and_no_labels_score_nothing():
    assert calibration([0.75] * 4, [True, True, True, False]).ece == pytest.approx(0.0)
    empty = calibration([], [])
    assert (empty.n, empty.ece, sum(b.count for b in empty.bins)) == (0, None, 0)


@pytest.mark.parametrize(("confidences", "correct"), [([1.5], [True]), ([-0.1], [True]), ([float("nan")], [True]),
                                                      ([0.5, 0.5], [True])])
def test_confidences_outside_zero_to_one_or_unpaired_are_refused(confidences, correct):
    with pytest.raises(ValueError):
        calibration(confidences, correct)


# ------------------------------------------------------------------------------ against a reference set


@pytest.fixture
def confident(db, catalogue, tmp_path):
    """The hand-worked example as annotator 1's urgency labels against the set "gold" (the reference says LEVEL_1
    throughout; a wrong label says LEVEL_2); annotator 2 answered without confidences."""
    samples = make_samples(len(CONFIDENCES), vary=True)
    for sample, confidence, right in zip(samples, CONFIDENCES, CORRECT, strict=True):
        outcome = store_outcome(current_run(), sample, 1, "urgency", ["LEVEL_1" if right else "LEVEL_2"])
        Outcome.objects.filter(pk=outcome.pk).update(confidence=confidence)
        store_outcome(current_run(), sample, 2, "urgency", ["LEVEL_1"])
    ids = dict(Sample.objects.filter(pk__in=samples).values_list("pk", "external_id"))
    path = tmp_path / "gold.csv"
    path.write_text("ID,Risk\n" + "".join(f"{ids[s]},LEVEL_1\n" for s in samples))
    import_reference(path, name="gold", layout=Layout(labels={"urgency": "Risk"}), actor="test")


def test_the_command_prints_the_calibration_of_the_annotators_with_confidences(confident, capsys):
    call_command("quality", "--reference", "gold", "--bootstrap", "0")
    out = capsys.readouterr().out
    assert "calibration of annotator 1: ECE 0.194 over 8 comparison(s)" in out
    assert "calibration of annotator 2" not in out
    assert "0.9–1.0         5       0.960     0.800" in out

    call_command("quality", "--reference", "gold", "--bootstrap", "0", "--json")
    rows = {row["name"]: row for row in json.loads(capsys.readouterr().out)["domains"][0]["rows"]}
    assert rows["annotator 2"]["calibration"] is None and rows["majority vote"]["calibration"] is None
    table = rows["annotator 1"]["calibration"]
    assert table["n"] == 8 and table["ece"] == pytest.approx(ECE)
    assert [b["count"] for b in table["bins"]] == [1, 2, 0, 0, 0, 0, 0, 0, 0, 5]


def test_the_quality_page_shows_the_table_only_where_confidences_exist(confident, client):
    client.force_login(make_staff("q", "workers_app.view_quality", "workers_app.view_referenceset"))
    page = client.get("/quality/?run=default&reference=gold").content.decode()
    assert 'data-calibration="urgency-1"' in page and "ECE 0.194 over 8 comparisons" in page
    assert 'data-calibration="urgency-2"' not in page
    Outcome.objects.update(confidence=None)
    assert "Calibration" not in client.get("/quality/?run=default&reference=gold").content.decode()
