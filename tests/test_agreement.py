"""Agreement statistics: pure computations, no database."""

from __future__ import annotations

import krippendorff
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stats import agreement
from stats.agreement import (
    AlphaResult,
    Interval,
    alpha_with_distance,
    krippendorff_alpha,
    majority_label,
    masi_distance,
    nominal_distance,
    pairwise_kappa,
    per_code_binary_alpha,
)

NAN = np.nan
LEVELS = ["LEVEL_0", "LEVEL_1", "LEVEL_2", "LEVEL_3", "LEVEL_4"]

# Krippendorff (2011), "Computing Krippendorff's Alpha-Reliability", section C: 4 coders x 12 units, values 1..5.
CLASSIC = [
    [1, 2, 3, 3, 2, 1, 4, 1, 2, None, None, None],
    [1, 2, 3, 3, 2, 2, 4, 1, 2, 5, None, 3],
    [None, 3, 3, 3, 2, 3, 4, 2, 2, 5, 1, None],
    [1, 2, 3, 3, 2, 4, 4, 1, 2, 5, 1, None],
]
CLASSIC_CODES = [[None if v is None else f"V{v}" for v in row] for row in CLASSIC]
CLASSIC_CATEGORIES = ["V1", "V2", "V3", "V4", "V5"]


def fs(*codes: str) -> frozenset:
    return frozenset(codes)


def as_package_data(labels, categories) -> np.ndarray:
    """Codes -> ranks with NaN for missing, the package's input format."""
    return np.array([[NAN if v is None else categories.index(v) for v in row] for row in labels], dtype=float)


def package_alpha(labels, categories, level) -> float:
    return krippendorff.alpha(as_package_data(labels, categories), value_domain=list(range(len(categories))),
                              level_of_measurement=level)


def package_alpha_or_none(data: np.ndarray, level: str) -> float | None:
    try:
        with np.errstate(all="ignore"):
            value = krippendorff.alpha(data, level_of_measurement=level)
    except ValueError:  # the package refuses a single-valued domain or data without any pairable unit
        return None
    return None if np.isnan(value) else float(value)


def noisy_ordinal_labels(n_units: int, *, seed: int, missing: float = 0.05) -> list[list[str | None]]:
    rng = np.random.default_rng(seed)
    truth = rng.integers(0, 5, n_units)
    ranks = np.clip(truth + rng.integers(-1, 2, (5, n_units)), 0, 4)
    return [[None if rng.random() < missing else LEVELS[r] for r in row] for row in ranks]


# ------------------------------------------------------------------------------------------ alpha vs the package


HAND_BUILT = [
    # 3 coders x 15 units with missing values: the package's own docstring example (nominal 0.691358).
    [
        [None, None, None, None, None, "LEVEL_2", "LEVEL_3", "LEVEL_0", "LEVEL_1", "LEVEL_0", "LEVEL_0", "LEVEL_2",
         "LEVEL_2", None, "LEVEL_2"],
        ["LEVEL_0", None, "LEVEL_1", "LEVEL_0", "LEVEL_2", "LEVEL_2", "LEVEL_3", "LEVEL_2", None, None, None, None,
         None, None, None],
        [None, None, "LEVEL_1", "LEVEL_0", "LEVEL_2", "LEVEL_3", "LEVEL_3", None, "LEVEL_1", "LEVEL_0", "LEVEL_0",
         "LEVEL_2", "LEVEL_2", None, "LEVEL_3"],
    ],
    # 5 annotators, mostly agreeing, one unit labelled by a single annotator (not pairable).
    [
        ["LEVEL_0", "LEVEL_4", "LEVEL_2", "LEVEL_1", None, "LEVEL_3"],
        ["LEVEL_0", "LEVEL_3", "LEVEL_2", None, None, "LEVEL_3"],
        ["LEVEL_1", "LEVEL_4", None, "LEVEL_1", "LEVEL_2", "LEVEL_3"],
        [None, "LEVEL_4", "LEVEL_2", "LEVEL_0", None, "LEVEL_4"],
        ["LEVEL_0", None, "LEVEL_1", "LEVEL_1", None, "LEVEL_3"],
    ],
    # 2 annotators that disagree a lot, with gaps.
    [
        ["LEVEL_0", "LEVEL_1", "LEVEL_4", None, "LEVEL_2", "LEVEL_0", "LEVEL_3"],
        ["LEVEL_4", "LEVEL_1", "LEVEL_0", "LEVEL_2", "LEVEL_2", None, "LEVEL_1"],
    ],
]


@pytest.mark.parametrize("labels", HAND_BUILT)
@pytest.mark.parametrize("level", ["nominal", "ordinal"])
def test_nominal_and_ordinal_alpha_equal_the_krippendorff_package(labels, level):
    result = krippendorff_alpha(labels, level=level, categories=LEVELS, bootstrap=0)
    assert result.alpha == pytest.approx(package_alpha(labels, LEVELS, level), abs=1e-12)
    assert result.level == level


def test_package_docstring_example_gives_its_documented_nominal_alpha():
    assert krippendorff_alpha(HAND_BUILT[0], level="nominal", bootstrap=0).alpha == pytest.approx(0.691358, abs=1e-6)


def test_classic_krippendorff_2011_example_gives_nominal_0743_and_ordinal_0815():
    nominal = krippendorff_alpha(CLASSIC_CODES, level="nominal", bootstrap=0)
    ordinal = krippendorff_alpha(CLASSIC_CODES, level="ordinal", categories=CLASSIC_CATEGORIES, bootstrap=0)
    # Checked against krippendorff.alpha 0.9.0: 0.743421... and 0.815387...; the paper prints 0.743 and 0.815.
    assert nominal.alpha == pytest.approx(0.743, abs=5e-4)
    assert ordinal.alpha == pytest.approx(0.815, abs=5e-4)
    assert nominal.n_units == 11  # unit 12 has a single value


def test_nominal_alpha_matches_a_hand_computation_and_ignores_an_unpaired_label():
    # Units (A, B): (a,a) (a,b) (b,b) (b,b) and (a, None), which has no pair and contributes nothing.
    # Coincidences: o_aa = 2, o_ab = o_ba = 1, o_bb = 4; n_a = 3, n_b = 5, n = 8.
    # alpha = 1 - (n - 1) * sum_{c!=k} o_ck / sum_{c!=k} n_c n_k = 1 - 7 * 2 / (2 * 3 * 5) = 1 - 14/30 = 8/15.
    labels = [["a", "a", "b", "b", "a"], ["a", "b", "b", "b", None]]
    result = krippendorff_alpha(labels, level="nominal", bootstrap=0)
    assert result.alpha == pytest.approx(8 / 15)
    assert result.n_units == 4


def test_ordinal_alpha_matches_a_hand_computation():
    # Units (A, B) in ranks: (0,0) (1,2) (2,2) (2,1). o_00 = 2, o_12 = o_21 = 2, o_22 = 2; n = (2, 2, 4), total 8.
    # Ordinal d(c,k) = (sum_{g=c..k} n_g - (n_c + n_k)/2)^2: d01 = (4-2)^2 = 4, d12 = (6-3)^2 = 9, d02 = (8-3)^2 = 25.
    # sum o*d = 4 * 9 = 36; sum_{c!=k} n_c n_k d = 2 * (2*2*4 + 2*4*9 + 2*4*25) = 576.
    # alpha = 1 - (n - 1) * 36 / 576 = 1 - 7 * 36 / 576 = 0.5625.
    labels = [["L0", "L1", "L2", "L2"], ["L0", "L2", "L2", "L1"]]
    result = krippendorff_alpha(labels, level="ordinal", categories=["L0", "L1", "L2"], bootstrap=0)
    assert result.alpha == pytest.approx(0.5625)


@pytest.mark.parametrize("level", ["nominal", "ordinal", "masi"])
def test_perfect_agreement_gives_alpha_one(level):
    if level == "masi":
        labels = [[fs("TA-1"), fs("TA-2", "TA-3"), None, fs("TA-9")]] * 3
    else:
        labels = [["LEVEL_0", "LEVEL_3", None, "LEVEL_4"]] * 3
    result = krippendorff_alpha(labels, level=level, categories=None if level == "masi" else LEVELS, bootstrap=50)
    assert result.alpha == pytest.approx(1.0)
    assert result.ci95 == Interval(pytest.approx(1.0), pytest.approx(1.0))


def test_ordinal_alpha_needs_the_category_order():
    with pytest.raises(ValueError, match="ordered categories"):
        krippendorff_alpha([["LEVEL_0"], ["LEVEL_1"]], level="ordinal")


def test_unknown_level_is_rejected():
    with pytest.raises(ValueError, match="unknown level"):
        krippendorff_alpha([["a"], ["b"]], level="interval")


# ------------------------------------------------------------------------------------------ own engine vs package


def small_matrices(max_value: int):
    return st.integers(2, 5).flatmap(
        lambda coders: st.integers(1, 8).flatmap(
            lambda units: st.lists(
                st.lists(st.one_of(st.none(), st.integers(0, max_value)), min_size=units, max_size=units),
                min_size=coders,
                max_size=coders,
            )
        )
    )


@settings(max_examples=300, deadline=None)
@given(small_matrices(max_value=3))
def test_generic_distance_alpha_with_nominal_distance_equals_the_package(labels):
    expected = package_alpha_or_none(np.array([[NAN if v is None else v for v in row] for row in labels], float),
                                     "nominal")
    ours = alpha_with_distance(labels, nominal_distance)
    if expected is None:
        assert ours is None
    else:
        assert ours == pytest.approx(expected, abs=1e-9)


@settings(max_examples=300, deadline=None)
@given(small_matrices(max_value=4))
def test_bootstrap_engine_reproduces_the_package_ordinal_alpha_when_every_unit_is_drawn_once(labels):
    data = np.array([[NAN if v is None else v for v in row] for row in labels], float)
    codes = np.where(np.isnan(data), agreement.MISSING, data).astype(np.int64)
    counts = agreement._pairable(agreement._value_counts(codes, 5))
    expected = package_alpha_or_none(data, "ordinal")
    if len(counts) == 0:
        assert expected is None
        return
    ours = agreement._ordinal_alphas(counts, np.ones((1, len(counts))))[0]
    if expected is None:
        assert np.isnan(ours)
    else:
        assert ours == pytest.approx(expected, abs=1e-9)


@pytest.mark.parametrize("level", ["nominal", "ordinal"])
def test_a_resample_equals_the_package_on_the_explicitly_resampled_units(level):
    # Weighting units is the same as duplicating their columns: check the first few resamples that way.
    labels = noisy_ordinal_labels(40, seed=3, missing=0.3)
    data = as_package_data(labels, LEVELS)
    pairable = np.flatnonzero((~np.isnan(data)).sum(axis=0) >= 2)
    weights = agreement.resample_weights(len(pairable), 5, 11)
    counts = agreement._pairable(agreement._value_counts(np.where(np.isnan(data), -1, data).astype(int), 5))
    ours = agreement._engine(level, LEVELS)(counts, weights)
    for row, alpha in zip(weights, ours, strict=True):
        resampled = data[:, np.repeat(pairable, row.astype(int))]
        assert alpha == pytest.approx(krippendorff.alpha(resampled, value_domain=list(range(5)),
                                                         level_of_measurement=level), abs=1e-9)


# ------------------------------------------------------------------------------------------ MASI


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [
        (fs("TA-1", "TA-2"), fs("TA-1", "TA-2"), 0.0),  # equal
        (fs("TA-1"), fs("TA-1", "TA-2"), 1 - (1 / 2) * (2 / 3)),  # subset: Jaccard 1/2, M 2/3
        (fs("TA-1", "TA-2"), fs("TA-2", "TA-3"), 1 - (1 / 3) * (1 / 3)),  # overlap: Jaccard 1/3, M 1/3
        (fs("TA-1"), fs("TA-2"), 1.0),  # disjoint
        (fs(), fs(), 0.0),  # two empty sets are equal
        (fs(), fs("TA-1"), 1.0),  # the empty set shares nothing
    ],
)
def test_masi_distance_for_equal_subset_overlap_and_disjoint_sets(a, b, expected):
    assert masi_distance(a, b) == pytest.approx(expected)
    assert masi_distance(b, a) == pytest.approx(expected)


def test_vectorised_masi_matrix_equals_the_pairwise_distance():
    domain = [fs(), fs("A"), fs("B"), fs("A", "B"), fs("A", "B", "C"), fs("C", "D"), fs("B", "C"), fs("NONE")]
    matrix = agreement.masi_distance_matrix(domain)
    expected = [[masi_distance(a, b) for b in domain] for a in domain]
    np.testing.assert_allclose(matrix, expected, atol=1e-12)


def test_masi_alpha_matches_a_hand_computation():
    # Units: ({a}, {a,b}) and ({b}, {b}). Values {a}: 1, {a,b}: 1, {b}: 2; n = 4.
    # d({a},{a,b}) = 1 - 1/2 * 2/3 = 2/3, d({a},{b}) = 1, d({a,b},{b}) = 2/3.
    # sum o*d = 2 * 2/3 = 4/3; sum_{c!=k} n_c n_k d = 2 * (1*1*2/3 + 1*2*1 + 1*2*2/3) = 8.
    # alpha = 1 - (n - 1) * (4/3) / 8 = 1 - 3 * 4/3 / 8 = 0.5.
    labels = [[fs("a"), fs("b")], [fs("a", "b"), fs("b")]]
    result = krippendorff_alpha(labels, level="masi", bootstrap=0)
    assert result.alpha == pytest.approx(0.5)
    assert result.level == "masi"


def test_masi_alpha_of_identical_sets_is_one():
    sets = [fs("MOD-1"), fs("MOD-2", "MOD-3"), fs("MOD-6"), fs("MOD-1", "MOD-4", "MOD-5")]
    assert krippendorff_alpha([sets] * 5, level="masi", bootstrap=0).alpha == pytest.approx(1.0)


def test_masi_alpha_equals_the_generic_alpha_with_the_masi_distance():
    rng = np.random.default_rng(5)
    codes = [f"TA-{k}" for k in range(1, 10)]
    labels = [[None if rng.random() < 0.1 else frozenset(rng.choice(codes, rng.integers(1, 4), replace=False))
               for _ in range(60)] for _ in range(4)]
    assert krippendorff_alpha(labels, level="masi", bootstrap=0).alpha == pytest.approx(
        alpha_with_distance(labels, masi_distance), abs=1e-12)


def test_set_labels_must_be_sets_and_may_be_checked_against_the_categories():
    with pytest.raises(TypeError, match="must be sets"):
        krippendorff_alpha([["TA-1"], ["TA-1"]], level="masi")
    with pytest.raises(ValueError, match="TA-99"):
        krippendorff_alpha([[fs("TA-1")], [fs("TA-99")]], level="masi", categories=["TA-1", "TA-2"])


# ------------------------------------------------------------------------------------------ per-code binary alpha


def test_per_code_binary_alpha_is_nominal_alpha_on_presence_with_missing_kept_missing():
    sets = [
        [fs("ADJ-1"), fs("ADJ-1", "ADJ-2"), fs("NONE"), None, fs("ADJ-2")],
        [fs("ADJ-1"), fs("ADJ-2"), fs("NONE"), fs("ADJ-1"), fs("ADJ-1", "ADJ-2")],
        [None, fs("ADJ-1", "ADJ-2"), fs("ADJ-1"), fs("ADJ-1"), fs("ADJ-2")],
    ]
    results = per_code_binary_alpha(sets, ["ADJ-1", "ADJ-2", "ADJ-8"], bootstrap=0)
    for code in ("ADJ-1", "ADJ-2"):
        presence = [[None if s is None else ("yes" if code in s else "no") for s in row] for row in sets]
        expected = krippendorff_alpha(presence, level="nominal", categories=["no", "yes"], bootstrap=0)
        assert results[code].alpha == pytest.approx(expected.alpha)
        assert results[code].level == f"binary:{code}"
        assert results[code].n_units == 5
    # A code nobody used has no variation: undefined, not 1.0 and not an error.
    assert results["ADJ-8"] == AlphaResult(alpha=None, ci95=Interval(None, None), level="binary:ADJ-8", n_units=5)


def test_binary_level_through_krippendorff_alpha_equals_the_per_code_function():
    sets = [[fs("TA-1"), fs("TA-2"), fs("TA-1", "TA-3")], [fs("TA-1"), fs("TA-1"), fs("TA-3")]]
    direct = krippendorff_alpha(sets, level="binary:TA-1", bootstrap=100, seed=4)
    assert per_code_binary_alpha(sets, ["TA-1"], bootstrap=100, seed=4)["TA-1"] == direct


# ------------------------------------------------------------------------------------------ bootstrap


@pytest.mark.parametrize("level", ["nominal", "ordinal"])
def test_bootstrap_interval_contains_the_estimate_and_is_deterministic_for_a_seed(level):
    labels = noisy_ordinal_labels(300, seed=1)
    first = krippendorff_alpha(labels, level=level, categories=LEVELS, bootstrap=500, seed=7)
    agreement.resample_weights.cache_clear()  # determinism must come from the seed, not from the cache
    again = krippendorff_alpha(labels, level=level, categories=LEVELS, bootstrap=500, seed=7)
    other = krippendorff_alpha(labels, level=level, categories=LEVELS, bootstrap=500, seed=8)
    assert first == again
    assert first.ci95.low < first.alpha < first.ci95.high
    assert other.alpha == first.alpha
    assert other.ci95 != first.ci95


def test_masi_bootstrap_interval_contains_the_estimate():
    rng = np.random.default_rng(2)
    codes = [f"MOD-{k}" for k in range(1, 7)]
    base = [frozenset(rng.choice(codes, rng.integers(1, 3), replace=False)) for _ in range(200)]
    labels = [[b if rng.random() < 0.7 else frozenset(rng.choice(codes, 1)) for b in base] for _ in range(5)]
    result = krippendorff_alpha(labels, level="masi", bootstrap=300, seed=1)
    assert result.ci95.low < result.alpha < result.ci95.high


def test_bootstrap_ignores_resamples_without_variation():
    # Two pairable units, one constant: resamples drawing only that unit are undefined and left out.
    labels = [["LEVEL_0", "LEVEL_0"], ["LEVEL_0", "LEVEL_1"], ["LEVEL_0", "LEVEL_1"]]
    result = krippendorff_alpha(labels, level="ordinal", categories=LEVELS, bootstrap=200)
    assert result.alpha is not None
    assert result.ci95.low is not None and result.ci95.high is not None


@pytest.mark.parametrize(
    ("labels", "n_units"),
    [
        ([["LEVEL_2", "LEVEL_2", None], ["LEVEL_2", "LEVEL_2", "LEVEL_2"]], 2),  # no variation
        ([["LEVEL_1", None], [None, "LEVEL_3"]], 0),  # no unit with two labels
        ([[None, None], [None, None]], 0),  # everything malformed
        ([], 0),  # no annotators
        ([[], []], 0),  # no samples
    ],
)
@pytest.mark.parametrize("level", ["nominal", "ordinal"])
def test_undefined_alpha_returns_none_without_raising(labels, n_units, level):
    result = krippendorff_alpha(labels, level=level, categories=LEVELS)
    assert result == AlphaResult(alpha=None, ci95=Interval(None, None), level=level, n_units=n_units)


def test_undefined_masi_alpha_returns_none_without_raising():
    result = krippendorff_alpha([[fs("TA-1"), None], [fs("TA-1"), fs("TA-2")]], level="masi")
    assert result == AlphaResult(alpha=None, ci95=Interval(None, None), level="masi", n_units=1)


def test_ragged_labels_are_rejected():
    with pytest.raises(ValueError, match="one label"):
        krippendorff_alpha([["LEVEL_0", "LEVEL_1"], ["LEVEL_0"]], level="nominal")


# ------------------------------------------------------------------------------------------ malformed = missing


def test_malformed_answers_are_missing_values_not_a_category():
    with_none = [["a", None, "b", "a", "b"], ["a", "b", None, "a", None], [None, "b", "b", "b", None]]
    result = krippendorff_alpha(with_none, level="nominal", bootstrap=0)
    as_nan = np.array([[NAN if v is None else {"a": 0, "b": 1}[v] for v in row] for row in with_none])
    assert result.alpha == pytest.approx(krippendorff.alpha(as_nan, level_of_measurement="nominal"))
    # The last sample has one real label, so it is not pairable; as a category None would have made it so.
    assert result.n_units == 4
    as_category = [["MALFORMED" if v is None else v for v in row] for row in with_none]
    assert result.alpha != pytest.approx(krippendorff_alpha(as_category, level="nominal", bootstrap=0).alpha)


def test_an_unknown_code_raises_instead_of_being_counted_or_dropped():
    with pytest.raises(ValueError, match="MALFORMED"):
        krippendorff_alpha([["LEVEL_0", "MALFORMED"], ["LEVEL_0", "LEVEL_1"]], level="ordinal", categories=LEVELS)


def test_none_is_not_accepted_as_a_category():
    with pytest.raises(ValueError, match="None"):
        krippendorff_alpha([["a"], ["b"]], level="nominal", categories=["a", "b", None])


# ------------------------------------------------------------------------------------------ Cohen's kappa


def test_quadratic_weighted_kappa_matches_a_hand_computation():
    # Pairs over the 4 samples both labelled (sample 5 lacks rater y): (0,0) (1,2) (2,2) (2,1).
    # Observed disagreement sum p_ij (i-j)^2 = (0 + 1 + 0 + 1) / 4 = 1/2.
    # Marginals x = y = (1, 1, 2) / 4; expected = sum_ij x_i y_j (i-j)^2
    #   = (1*1*1 + 1*2*4 + 1*1*1 + 1*2*1 + 2*1*4 + 2*1*1) / 16 = 22/16.
    # kappa = 1 - (1/2) / (22/16) = 1 - 8/22 = 7/11.
    labels = [["L0", "L1", "L2", "L2", "L0"], ["L0", "L2", "L2", "L1", None]]
    matrix = pairwise_kappa(labels, ["x", "y"], categories=["L0", "L1", "L2"], weighted=True)
    assert matrix.values[0][1] == pytest.approx(7 / 11)
    assert matrix.values[1][0] == matrix.values[0][1]
    assert matrix.weights == "quadratic"
    assert matrix.annotators == ("x", "y")


def test_unweighted_kappa_matches_a_hand_computation():
    # Same pairs: observed agreement 2/4; chance agreement (1*1 + 1*1 + 2*2) / 16 = 6/16.
    # kappa = (1/2 - 6/16) / (1 - 6/16) = (2/16) / (10/16) = 0.2.
    labels = [["L0", "L1", "L2", "L2", "L0"], ["L0", "L2", "L2", "L1", None]]
    matrix = pairwise_kappa(labels, ["x", "y"], categories=["L0", "L1", "L2"], weighted=False)
    assert matrix.values[0][1] == pytest.approx(0.2)
    assert matrix.weights == "none"


def test_unweighted_kappa_of_identical_raters_is_one_and_the_matrix_is_symmetric():
    labels = noisy_ordinal_labels(50, seed=4)
    labels[2] = list(labels[0])
    matrix = pairwise_kappa(labels, list("abcde"), categories=LEVELS, weighted=False)
    assert matrix.values[0][2] == pytest.approx(1.0)
    assert all(matrix.values[i][i] == 1.0 for i in range(5))
    assert all(matrix.values[i][j] == matrix.values[j][i] for i in range(5) for j in range(5))


def test_kappa_is_none_for_a_pair_without_common_samples_or_without_variation():
    labels = [["L0", "L1", None, None], [None, None, "L0", "L1"], ["L0", "L0", "L0", "L0"], ["L0", "L0", "L0", "L0"]]
    matrix = pairwise_kappa(labels, list("abcd"), categories=["L0", "L1"], weighted=True)
    assert matrix.values[0][1] is None and matrix.values[1][0] is None  # no common samples
    assert matrix.values[2][3] is None  # both always L0: chance explains everything, kappa is 0/0
    assert matrix.values[0][0] == 1.0


def test_kappa_needs_one_name_per_annotator():
    with pytest.raises(ValueError, match="per annotator"):
        pairwise_kappa([["L0"], ["L1"]], ["only-one"], categories=["L0", "L1"], weighted=False)


# ------------------------------------------------------------------------------------------ majority label


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        (["INT-2", "INT-2", "INT-3", "INT-2", "INT-1"], ("INT-2", False)),  # clear majority
        (["INT-2", "INT-3", "INT-2", "INT-3"], (None, False)),  # tie for first place
        (["INT-4", "INT-4", "INT-4"], ("INT-4", True)),  # all agree
        ([None, "INT-4", None, "INT-4", None], ("INT-4", True)),  # missing values ignored
        ([None, None, None, "INT-1", "INT-2"], (None, False)),  # None is no vote, so this is a tie
        (["INT-5", None, None], ("INT-5", False)),  # a single label is no agreement
        ([None, None], (None, False)),  # nothing to go on
        ([], (None, False)),
        ([fs("TA-1", "TA-2"), fs("TA-2", "TA-1"), fs("TA-3")], (fs("TA-1", "TA-2"), False)),  # sets compare as sets
    ],
)
def test_majority_label(values, expected):
    assert majority_label(values) == expected
