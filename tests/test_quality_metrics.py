"""stats.quality and stats.alt_test: every figure equals scikit-learn's (SciPy's, statsmodels') on random data and on
a worked example by hand; the consensus labellers and the Alternative Annotator Test behave as described."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.stats import t as scipy_t
from scipy.stats import ttest_1samp
from sklearn.metrics import (
    accuracy_score,
    cohen_kappa_score,
    confusion_matrix,
    f1_score,
    precision_recall_fscore_support,
)
from statsmodels.stats.multitest import multipletests

from stats.agreement import majority_label, masi_distance
from stats.alt_test import alt_test, benjamini_yekutieli, masi_similarity, student_t_cdf
from stats.quality import (
    FEW_CATEGORIES,
    NOMINAL,
    ORDINAL,
    SET,
    _by_item,
    _category_sums,
    _weights,
    dawid_skene,
    dawid_skene_labels,
    majority_labels,
    quality,
    share,
)

LEVELS = ["LEVEL_0", "LEVEL_1", "LEVEL_2", "LEVEL_3", "LEVEL_4"]
CODES = ["TA-1", "TA-2", "TA-3", "TA-4"]

pairs = st.integers(min_value=1, max_value=60).flatmap(lambda n: st.tuples(
    st.lists(st.integers(0, 4), min_size=n, max_size=n), st.lists(st.integers(0, 4), min_size=n, max_size=n)))


def _close(ours: float | None, theirs: float) -> bool:
    if np.isnan(theirs):
        return ours is None
    return ours is not None and ours == pytest.approx(theirs, abs=1e-9)


@settings(max_examples=200, deadline=None)
@given(pairs, st.sampled_from([ORDINAL, NOMINAL]))
def test_one_code_figures_equal_scikit_learns_on_random_labels(data, kind):
    truth, label = data
    result = quality([LEVELS[x] for x in label], [[LEVELS[x]] for x in truth], kind=kind, categories=LEVELS,
                     bootstrap=0)
    assert result.accuracy.value == pytest.approx(accuracy_score(truth, label))
    assert result.macro_f1.value == pytest.approx(f1_score(truth, label, average="macro", zero_division=0))
    with np.errstate(all="ignore"):
        kappa = cohen_kappa_score(truth, label, labels=list(range(5)),
                                  weights="quadratic" if kind == ORDINAL else None)
    assert _close(result.kappa.value, kappa)
    assert np.array_equal(np.array(result.confusion), confusion_matrix(truth, label, labels=list(range(5))))
    precision, recall, f1, support = precision_recall_fscore_support(truth, label, labels=list(range(5)),
                                                                     zero_division=0)
    assert [c.precision.value for c in result.per_class] == pytest.approx(list(precision))
    assert [c.recall.value for c in result.per_class] == pytest.approx(list(recall))
    assert [c.f1.value for c in result.per_class] == pytest.approx(list(f1))
    assert [c.support for c in result.per_class] == list(support)


code_sets = st.frozensets(st.sampled_from(CODES), max_size=3)
set_pairs = st.integers(min_value=1, max_value=40).flatmap(lambda n: st.tuples(
    st.lists(code_sets, min_size=n, max_size=n), st.lists(code_sets, min_size=n, max_size=n)))


def _indicators(sets: list[frozenset]) -> np.ndarray:
    return np.array([[code in labels for code in CODES] for labels in sets], dtype=int)


def _masi_kappa(truth: list[frozenset], label: list[frozenset]) -> float | None:
    """1 - D_o / D_e written out the slow way: every pair, and every (truth, label) combination for chance."""
    observed = np.mean([masi_distance(t, g) for t, g in zip(truth, label, strict=True)])
    expected = np.mean([masi_distance(t, g) for t in truth for g in label])
    return None if expected <= 1e-12 else 1 - observed / expected


@settings(max_examples=150, deadline=None)
@given(set_pairs)
def test_code_set_figures_equal_scikit_learns_multilabel_metrics_and_masi_kappa(data):
    truth, label = data
    result = quality(label, [[t] for t in truth], kind=SET, categories=CODES, bootstrap=0)
    truth_matrix, label_matrix = _indicators(truth), _indicators(label)
    assert result.accuracy.value == pytest.approx(accuracy_score(truth_matrix, label_matrix))
    present = [k for k in range(len(CODES)) if truth_matrix[:, k].any() or label_matrix[:, k].any()]
    if present:
        assert result.macro_f1.value == pytest.approx(f1_score(truth_matrix, label_matrix, average="macro",
                                                               labels=present, zero_division=0))
    else:
        assert result.macro_f1.value is None
    _, _, f1, support = precision_recall_fscore_support(truth_matrix, label_matrix, zero_division=0)
    assert [c.f1.value for c in result.per_class] == pytest.approx(list(f1))
    assert [c.support for c in result.per_class] == list(support)
    expected = _masi_kappa(truth, label)
    assert (result.kappa.value is None) == (expected is None)
    if expected is not None:
        assert result.kappa.value == pytest.approx(expected)


def test_a_worked_example_by_hand():
    # Reference / given for six posts:
    #   L0/L0  L1/L1  L2/L1  L2/L2  L3/L4  L4/L4
    truth = ["LEVEL_0", "LEVEL_1", "LEVEL_2", "LEVEL_2", "LEVEL_3", "LEVEL_4"]
    label = ["LEVEL_0", "LEVEL_1", "LEVEL_1", "LEVEL_2", "LEVEL_4", "LEVEL_4"]
    result = quality(label, [[t] for t in truth], kind=ORDINAL, categories=LEVELS, bootstrap=0)
    assert (result.items, result.n) == (6, 6)
    assert result.accuracy.value == pytest.approx(4 / 6)
    # Per class F1 = 2 tp / (support + predicted): L0 1, L1 2/3, L2 2/3, L3 0, L4 2/3 -> macro 3/5.
    assert [c.f1.value for c in result.per_class] == pytest.approx([1, 2 / 3, 2 / 3, 0, 2 / 3])
    assert result.macro_f1.value == pytest.approx(3 / 5)
    # Quadratic kappa: observed squared distance (1 + 1) / 6 = 1/3. Reference shares of ranks 0-4: 1,1,2,1,1 / 6;
    # given: 1,2,1,0,2 / 6. Expected = sum_ij r_i g_j (i-j)^2 = (38 + 20 + 28 + 20 + 38) / 36 = 4 (row by row).
    # kappa = 1 - (1/3) / 4 = 11/12.
    assert result.kappa.value == pytest.approx(11 / 12)
    assert result.confusion[2] == (0, 1, 1, 0, 0) and result.confusion[3] == (0, 0, 0, 0, 1)
    assert result.kappa.value == pytest.approx(cohen_kappa_score(truth, label, labels=LEVELS, weights="quadratic"))


def test_the_bootstrap_interval_holds_the_estimate_and_is_reproducible():
    rng = np.random.default_rng(3)
    truth = rng.integers(0, 5, 300)
    label = np.where(rng.random(300) < 0.7, truth, rng.integers(0, 5, 300))
    args = ([LEVELS[x] for x in label], [[LEVELS[x]] for x in truth])
    first = quality(*args, kind=ORDINAL, categories=LEVELS, bootstrap=500, seed=4)
    again = quality(*args, kind=ORDINAL, categories=LEVELS, bootstrap=500, seed=4)
    assert first == again
    for estimate in (first.accuracy, first.macro_f1, first.kappa):
        assert estimate.ci95.low < estimate.value < estimate.ci95.high
        assert estimate.ci95.high - estimate.ci95.low < 0.2  # 300 items: a tight interval


def test_missing_labels_are_not_compared_and_several_raters_give_one_comparison_each():
    result = quality(["LEVEL_1", None, "LEVEL_2"], [["LEVEL_1", "LEVEL_2"], ["LEVEL_0"], []], kind=NOMINAL,
                     categories=LEVELS, bootstrap=0)
    assert (result.items, result.n) == (1, 2)
    assert result.accuracy.value == pytest.approx(0.5)


def test_nothing_to_compare_is_undefined_not_an_error():
    result = quality([None, None], [["LEVEL_1"], ["LEVEL_2"]], kind=ORDINAL, categories=LEVELS)
    assert (result.n, result.accuracy.value, result.kappa.value, result.macro_f1.value) == (0, None, None, None)


def test_a_label_outside_the_codes_is_refused():
    with pytest.raises(ValueError, match="not one of the categories"):
        quality(["LEVEL_9"], [["LEVEL_1"]], kind=ORDINAL, categories=LEVELS)


def test_share_of_flags_with_its_interval():
    estimate = share([True] * 10 + [False] * 30, bootstrap=400)
    assert estimate.value == pytest.approx(0.25)
    assert estimate.ci95.low < 0.25 < estimate.ci95.high
    assert share([]).value is None


def test_dawid_skene_trusts_the_annotators_that_agree_with_each_other():
    rng = np.random.default_rng(5)
    truth = rng.integers(0, 3, 400)
    good = [np.where(rng.random(400) < 0.9, truth, rng.integers(0, 3, 400)) for _ in range(3)]
    noisy = [rng.integers(0, 3, 400) for _ in range(4)]  # four annotators guessing outvote three good ones
    codes = np.array(good + noisy)
    posterior = dawid_skene(codes, 3)
    consensus = posterior.argmax(axis=1)
    votes = np.array([np.bincount(codes[:, i], minlength=3).argmax() for i in range(400)])
    assert (consensus == truth).mean() > 0.9
    assert (consensus == truth).mean() > (votes == truth).mean()


def test_dawid_skene_labels_leave_unlabelled_items_empty_and_handle_code_sets():
    labels = dawid_skene_labels([["LEVEL_1", None], ["LEVEL_1", None], ["LEVEL_2", None]], kind=ORDINAL,
                                categories=LEVELS)
    assert labels == ["LEVEL_1", None]
    sets = dawid_skene_labels([[frozenset({"TA-1"})], [frozenset({"TA-1", "TA-2"})], [frozenset({"TA-1"})]],
                              kind=SET, categories=CODES)
    assert sets == [frozenset({"TA-1"})]


code_sets = st.frozensets(st.sampled_from(CODES), max_size=3)


@settings(max_examples=100, deadline=None)
@given(st.integers(1, 4).flatmap(lambda n: st.lists(
    st.lists(st.one_of(st.none(), code_sets), min_size=n, max_size=n), min_size=1, max_size=4)))
def test_dawid_skene_code_sets_ask_each_code_as_a_yes_no_question_of_its_own(labels):
    """Each code's presence is a two-class Dawid-Skene of its own; the set holds the codes more likely present."""
    per_code = {code: dawid_skene(np.array([[-1 if v is None else int(code in v) for v in row] for row in labels]),
                                  2)[:, 1] for code in CODES}
    expected = [None if any(np.isnan(per_code[c][i]) for c in CODES)
                else frozenset(c for c in CODES if per_code[c][i] > 0.5) for i in range(len(labels[0]))]
    assert dawid_skene_labels(labels, kind=SET, categories=CODES) == expected


@settings(max_examples=50, deadline=None)
@given(st.integers(1, 80), st.integers(FEW_CATEGORIES + 1, 3 * FEW_CATEGORIES), st.integers(0, 2**16),
       st.booleans())
def test_many_categories_are_counted_per_resample_as_the_matrix_product_counts_them(items, size, seed, times):
    """The many-categories path (sorted runs of the items' weight rows) equals the weights times the items'
    category counts, exactly (whole numbers)."""
    rng = np.random.default_rng(seed)
    weights, by_item = _weights(items, 20, seed), _by_item(items, 20, seed)
    entries = rng.integers(0, items, 3 * items)
    categories = rng.integers(0, size, len(entries))
    repeated = rng.integers(1, 4, len(entries)).astype(np.float32) if times else None
    counts = np.zeros((items, size))
    np.add.at(counts, (entries, categories), 1.0 if repeated is None else repeated)
    found = _category_sums(weights, by_item, entries, categories, size, repeated)
    assert np.array_equal(found, weights.astype(float) @ counts)


def test_benjamini_yekutieli_equals_statsmodels():
    rng = np.random.default_rng(6)
    for _ in range(50):
        p_values = list(rng.random(rng.integers(1, 8)) ** 3)
        assert benjamini_yekutieli(p_values, 0.05) == list(multipletests(p_values, alpha=0.05,
                                                                         method="fdr_by")[0])


def _raters(rng, n: int, accuracy: list[float], truth: np.ndarray) -> list[dict[str, str]]:
    given = [np.where(rng.random(n) < a, truth, rng.integers(0, 5, n)) for a in accuracy]
    return [{f"r{k}": LEVELS[g[i]] for k, g in enumerate(given)} for i in range(n)]


def test_the_alt_test_passes_an_llm_as_good_as_the_raters_and_fails_a_guesser():
    rng = np.random.default_rng(7)
    truth = rng.integers(0, 5, 120)
    humans = _raters(rng, 120, [0.7, 0.7, 0.7, 0.7], truth)
    good_llm = [LEVELS[x] for x in np.where(rng.random(120) < 0.85, truth, rng.integers(0, 5, 120))]
    guesser = [LEVELS[x] for x in rng.integers(0, 5, 120)]
    passed = alt_test(good_llm, humans, epsilon=0.2)
    assert passed.passed and passed.winning_rate == 1.0 and passed.tested == 4
    assert passed.advantage_probability > 0.5
    failed = alt_test(guesser, humans, epsilon=0.2)
    assert not failed.passed and failed.winning_rate == 0.0


def test_the_alt_test_p_value_is_scipys_one_sided_t_test():
    rng = np.random.default_rng(8)
    truth = rng.integers(0, 5, 60)
    humans = _raters(rng, 60, [0.8, 0.6, 0.7], truth)
    llm = [LEVELS[x] for x in np.where(rng.random(60) < 0.6, truth, rng.integers(0, 5, 60))]
    result = alt_test(llm, humans, epsilon=0.1, min_items=10)
    rater = result.raters[0]
    f_wins, h_wins = [], []
    for answer, raters in zip(llm, humans, strict=True):
        others = [raters["r1"], raters["r2"]]
        llm_score = np.mean([answer == o for o in others])
        rater_score = np.mean([raters["r0"] == o for o in others])
        f_wins.append(float(llm_score >= rater_score))
        h_wins.append(float(rater_score >= llm_score))
    expected = ttest_1samp(np.array(h_wins) - np.array(f_wins), 0.1, alternative="less").pvalue
    assert rater.p_value == pytest.approx(expected)
    assert rater.llm_advantage == pytest.approx(np.mean(f_wins))


def test_the_alt_test_needs_three_raters_per_item_and_enough_items():
    humans = [{"a": "LEVEL_1", "b": "LEVEL_1"}] * 40  # two raters: nobody can be left out against two others
    result = alt_test(["LEVEL_1"] * 40, humans)
    assert result.tested == 0 and result.winning_rate is None and not result.passed
    assert masi_similarity(frozenset({"TA-1"}), frozenset({"TA-1"})) == 1.0


@settings(max_examples=300, deadline=None)
@given(st.floats(-40, 40), st.integers(1, 5000))
def test_the_t_distribution_function_equals_scipys(value, df):
    assert student_t_cdf(value, df) == pytest.approx(scipy_t.cdf(value, df), rel=1e-9, abs=1e-13)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.lists(st.one_of(st.none(), st.sampled_from(LEVELS[:3])), min_size=6, max_size=6), min_size=1,
                max_size=5))
def test_majority_labels_agree_with_majority_label_item_by_item(labels):
    expected = [majority_label(list(votes))[0] for votes in zip(*labels, strict=True)]
    assert majority_labels(labels) == expected
