"""compare_runs: how one annotator's labels moved between two runs, per domain, over the samples both annotated OK.
The expected figures are worked out by hand in the comments."""

from __future__ import annotations

import pytest

from tests.helpers import make_samples, store_outcome
from workers_app.runs.compare import ComparisonRefused, compare_runs

pytestmark = pytest.mark.django_db


def make_run(name: str, **fields):
    from workers_app.models import Run

    return Run.objects.create(name=name, created_by="test", **fields)


def store_column(run, samples: list[int], annotator: int, domain: str, labels: list[list[str]], **fields) -> None:
    for sample_id, given in zip(samples, labels, strict=True):
        store_outcome(run, sample_id, annotator, domain, given, **fields)


@pytest.fixture
def runs(catalogue):
    return make_run("first"), make_run("second")


@pytest.fixture
def samples(catalogue):
    return make_samples(6)


def only_pair(comparison):
    (pair,) = comparison.pairs
    return pair


# ------------------------------------------------------------------------------------------------ the figures


def test_an_ordinal_domain_gets_quadratic_kappa_identical_share_and_the_changed_labels(runs, samples):
    first, second = runs
    store_column(first, samples[:4], 1, "urgency", [["LEVEL_0"], ["LEVEL_1"], ["LEVEL_2"], ["LEVEL_2"]])
    store_column(second, samples[:4], 1, "urgency", [["LEVEL_0"], ["LEVEL_2"], ["LEVEL_2"], ["LEVEL_1"]])
    pair = only_pair(compare_runs(first, second))
    # Ranks (0,0) (1,2) (2,2) (2,1): observed squared distance 2/4. Both runs use ranks 0, 1, 2 with shares
    # 1/4, 1/4, 1/2, so the expected squared distance is 2 x variance = 2 x (9/4 - 25/16) = 11/8.
    # kappa = 1 - (1/2) / (11/8) = 7/11.
    assert (pair.domain, pair.annotator, pair.n, pair.changed) == ("urgency", 1, 4, 2)
    assert pair.identical == 0.5
    assert pair.agreement == pytest.approx(7 / 11)
    assert pair.measure == "Cohen's kappa, quadratic weights"
    from workers_app.models import Sample

    ids = dict(Sample.objects.values_list("pk", "external_id"))
    assert [(c.external_id, c.label_a, c.label_b) for c in pair.changes] == [
        (ids[samples[1]], "LEVEL_1", "LEVEL_2"), (ids[samples[3]], "LEVEL_2", "LEVEL_1")]


def test_a_nominal_domain_gets_unweighted_kappa(runs, samples):
    from workers_app.models import Domain

    Domain.objects.create(slug="topic", title="Topic", kind="nominal", codes=[{"code": "A"}, {"code": "B"}],
                          prompt_template="Topic of {text}", position=9)
    first, second = runs
    store_column(first, samples[:4], 2, "topic", [["A"], ["A"], ["B"], ["B"]])
    store_column(second, samples[:4], 2, "topic", [["A"], ["B"], ["B"], ["B"]])
    pair = only_pair(compare_runs(first, second))
    # Observed agreement 3/4; chance: A 1/2 x 1/4 + B 1/2 x 3/4 = 1/2; kappa = (3/4 - 1/2) / (1 - 1/2) = 1/2.
    assert (pair.n, pair.changed, pair.identical) == (4, 1, 0.75)
    assert pair.agreement == pytest.approx(0.5)
    assert pair.measure == "Cohen's kappa"


def test_a_code_set_domain_gets_masi_alpha_and_order_within_a_set_is_no_change(runs, samples):
    first, second = runs
    store_column(first, samples[:3], 1, "therapeutic", [["TA-1"], ["TA-2", "TA-1"], ["TA-2"]])
    store_column(second, samples[:3], 1, "therapeutic", [["TA-1"], ["TA-1"], ["TA-2"]])
    store_outcome(first, samples[3], 1, "therapeutic", ["TA-1", "TA-3"])
    store_outcome(second, samples[3], 1, "therapeutic", ["TA-3", "TA-1"])
    pair = only_pair(compare_runs(first, second))
    # The fourth sample's sets differ only in order: the same set. (The hand-computed alpha is the next test's.)
    from stats.agreement import MASI, krippendorff_alpha

    sets = [frozenset({"TA-1"}), frozenset({"TA-1", "TA-2"}), frozenset({"TA-2"}), frozenset({"TA-1", "TA-3"})]
    moved = [sets[0], sets[0], sets[2], sets[3]]
    assert (pair.n, pair.changed, pair.identical) == (4, 1, 0.75)
    assert pair.agreement == pytest.approx(krippendorff_alpha([sets, moved], level=MASI, bootstrap=0).alpha)
    assert pair.measure == "Krippendorff's alpha, MASI distance"
    assert [(c.label_a, c.label_b) for c in pair.changes] == [("TA-1, TA-2", "TA-1")]


def test_masi_alpha_of_two_runs_equals_the_hand_computed_value(runs, samples):
    first, second = runs
    store_column(first, samples[:3], 1, "therapeutic", [["TA-1"], ["TA-1", "TA-2"], ["TA-2"]])
    store_column(second, samples[:3], 1, "therapeutic", [["TA-1"], ["TA-1"], ["TA-2"]])
    # Values {1} x3, {1,2} x1, {2} x2 (n = 6). Observed: the pair ({1,2},{1}) both ways, 2 x 2/3 = 4/3.
    # Expected: 2 x (3x1x2/3 + 3x2x1 + 1x2x2/3) = 56/3. alpha = 1 - (n - 1) x 4/3 / (56/3) = 1 - 20/56 = 9/14.
    assert only_pair(compare_runs(first, second)).agreement == pytest.approx(9 / 14)


def test_free_text_lists_count_changes_but_get_no_agreement_measure(runs, samples):
    first, second = runs
    store_column(first, samples[:2], 3, "redressal", [["sleep"], ["exam stress"]])
    store_column(second, samples[:2], 3, "redressal", [["sleep"], ["exam stress", "sleep"]])
    pair = only_pair(compare_runs(first, second))
    assert (pair.n, pair.changed, pair.agreement, pair.measure) == (2, 1, None, "none (free text)")
    assert [(c.label_a, c.label_b) for c in pair.changes] == [("exam stress", "exam stress, sleep")]


def test_only_samples_both_runs_annotated_ok_count(runs, samples):
    first, second = runs
    store_column(first, samples[:3], 1, "urgency", [["LEVEL_1"], ["LEVEL_1"], ["LEVEL_1"]])
    store_outcome(second, samples[0], 1, "urgency", ["LEVEL_2"])
    store_outcome(second, samples[1], 1, "urgency", [], status="malformed")  # no label: not compared
    store_outcome(second, samples[4], 1, "urgency", ["LEVEL_3"])  # only in the second run
    pair = only_pair(compare_runs(first, second))
    assert (pair.n, pair.changed, pair.identical) == (1, 1, 0.0)


def test_pairs_are_listed_by_domain_position_then_annotator_and_only_where_both_runs_have_outcomes(runs, samples):
    first, second = runs
    for run in runs:
        store_outcome(run, samples[0], 2, "intensity", ["INT-1"])
        store_outcome(run, samples[0], 1, "intensity", ["INT-1"])
        store_outcome(run, samples[0], 4, "urgency", ["LEVEL_1"])
    store_outcome(first, samples[0], 5, "urgency", ["LEVEL_1"])  # the second run has no annotator 5
    comparison = compare_runs(first, second)
    assert [(p.domain, p.annotator) for p in comparison.pairs] == [("urgency", 4), ("intensity", 1),
                                                                   ("intensity", 2)]
    assert [(domain, [p.annotator for p in pairs]) for domain, pairs in comparison.by_domain()] == [
        ("urgency", [4]), ("intensity", [1, 2])]
    assert (comparison.n, comparison.changed, comparison.nothing_in_common) == (3, 0, None)


def test_each_pair_names_the_prompt_versions_and_models_each_run_used(runs, samples):
    first, second = runs
    store_outcome(first, samples[0], 1, "urgency", ["LEVEL_1"], prompt_version=1, model="small-model")
    store_outcome(first, samples[1], 1, "urgency", ["LEVEL_1"], prompt_version=1, model="small-model")
    store_outcome(second, samples[0], 1, "urgency", ["LEVEL_1"], prompt_version=2, model="large-model")
    store_outcome(second, samples[1], 1, "urgency", [], status="malformed", prompt_version=3, model="large-model")
    pair = only_pair(compare_runs(first, second))
    assert [(s.prompt_version, s.model, s.outcomes) for s in pair.seen_a] == [(1, "small-model", 2)]
    assert [(s.prompt_version, s.model, s.outcomes) for s in pair.seen_b] == [(2, "large-model", 1),
                                                                              (3, "large-model", 1)]


def test_the_changed_labels_are_capped_but_counted_in_full(runs, samples):
    first, second = runs
    store_column(first, samples, 1, "urgency", [["LEVEL_0"]] * 6)
    store_column(second, samples, 1, "urgency", [["LEVEL_1"]] * 6)
    capped = only_pair(compare_runs(first, second, keep=2))
    assert (capped.changed, len(capped.changes), capped.all_changes_kept) == (6, 2, False)
    whole = only_pair(compare_runs(first, second, keep=None))
    assert (len(whole.changes), whole.all_changes_kept) == (6, True)


def test_codes_that_changed_between_runs_are_still_compared(catalogue, samples):
    from workers_app.models import Domain

    urgency = Domain.objects.get(slug="urgency")
    codes = [{"code": c} for c in ("LEVEL_0", "LEVEL_1", "LEVEL_2", "LEVEL_3", "LEVEL_4")]
    first = make_run("first", pinned={"domains": {"urgency": {"codes": codes[:3], "kind": urgency.kind}}})
    second = make_run("second", pinned={"domains": {"urgency": {"codes": codes, "kind": urgency.kind}}})
    store_column(first, samples[:3], 1, "urgency", [["LEVEL_0"], ["LEVEL_1"], ["LEVEL_2"]])
    store_column(second, samples[:3], 1, "urgency", [["LEVEL_0"], ["LEVEL_1"], ["LEVEL_4"]])
    pair = only_pair(compare_runs(first, second))
    # Ranks (0,0) (1,1) (2,4): observed 4/3; shares a: 1/3 each of 0,1,2; b: 1/3 each of 0,1,4.
    # Expected: mean over the 9 (a, b) pairs of (a - b)^2 = (0+1+16 + 1+0+9 + 4+1+4)/9 = 36/9 = 4.
    assert pair.agreement == pytest.approx(1 - (4 / 3) / 4)


def test_undefined_kappa_is_none_when_neither_run_varies(runs, samples):
    first, second = runs
    store_column(first, samples[:3], 1, "urgency", [["LEVEL_2"]] * 3)
    store_column(second, samples[:3], 1, "urgency", [["LEVEL_2"]] * 3)
    pair = only_pair(compare_runs(first, second))
    assert (pair.n, pair.identical, pair.agreement, pair.changed) == (3, 1.0, None, 0)


# ------------------------------------------------------------------------------------------------ edge cases


def test_comparing_a_run_with_itself_is_refused(runs):
    first, _ = runs
    with pytest.raises(ComparisonRefused, match="run first compared with itself"):
        compare_runs(first, first)


def test_runs_without_a_shared_annotator_and_domain_have_nothing_in_common(runs, samples):
    first, second = runs
    store_outcome(first, samples[0], 1, "urgency", ["LEVEL_1"])
    store_outcome(second, samples[0], 2, "urgency", ["LEVEL_1"])
    store_outcome(second, samples[0], 1, "intensity", ["INT-1"])
    comparison = compare_runs(first, second)
    assert comparison.pairs == []
    assert comparison.nothing_in_common.startswith("Nothing in common: no annotator has outcomes for the same domain")


def test_runs_without_a_shared_ok_sample_have_nothing_in_common_but_show_their_pairs(runs, samples):
    first, second = runs
    store_outcome(first, samples[0], 1, "urgency", ["LEVEL_1"])
    store_outcome(second, samples[1], 1, "urgency", ["LEVEL_1"])
    store_outcome(second, samples[0], 1, "urgency", [], status="malformed")
    comparison = compare_runs(first, second)
    pair = only_pair(comparison)
    assert (pair.n, pair.identical, pair.agreement, pair.changed) == (0, None, None, 0)
    assert "no sample has an OK label from the same annotator and domain in both" in comparison.nothing_in_common


def test_empty_runs_have_nothing_in_common(runs):
    comparison = compare_runs(*runs)
    assert comparison.pairs == [] and comparison.nothing_in_common is not None


def test_the_comparison_only_reads(runs, samples):
    from audit.models import AuditLog
    from workers_app.models import Outcome, Run

    first, second = runs
    store_outcome(first, samples[0], 1, "urgency", ["LEVEL_1"])
    store_outcome(second, samples[0], 1, "urgency", ["LEVEL_3"])
    before = (list(Outcome.objects.values_list("id", "labels", "run_id")), list(Run.objects.values_list("id", "is_current")),
              AuditLog.objects.count())
    compare_runs(first, second, keep=None)
    assert before == (list(Outcome.objects.values_list("id", "labels", "run_id")),
                      list(Run.objects.values_list("id", "is_current")), AuditLog.objects.count())
