"""Fleiss' kappa: equal to statsmodels' on fixtures, defined where it should be, with a bootstrap interval."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from statsmodels.stats.inter_rater import aggregate_raters
from statsmodels.stats.inter_rater import fleiss_kappa as statsmodels_fleiss

from stats.agreement import fleiss_kappa

LEVELS = ["LEVEL_0", "LEVEL_1", "LEVEL_2", "LEVEL_3", "LEVEL_4"]

# Fleiss (1971): 6 raters put 10 subjects into 5 categories (the table of his worked example in Wikipedia's form).
FLEISS_TABLE = [[0, 0, 0, 0, 14], [0, 2, 6, 4, 2], [0, 0, 3, 5, 6], [0, 3, 9, 2, 0], [2, 2, 8, 1, 1],
                [7, 7, 0, 0, 0], [3, 2, 6, 3, 0], [2, 5, 3, 2, 2], [6, 5, 2, 1, 0], [0, 2, 2, 3, 7]]


def rows_from_table(table: list[list[int]]) -> list[list[str]]:
    """(annotators x units) labels that give the table's category counts per unit."""
    units = [[LEVELS[j] for j, n in enumerate(row) for _ in range(n)] for row in table]
    return [list(column) for column in zip(*units, strict=True)]


def reference(labels: list[list[str | None]]) -> float:
    codes = np.array([[LEVELS.index(v) for v in row] for row in labels]).T  # units x raters
    table, _ = aggregate_raters(codes, n_cat=len(LEVELS))
    return float(statsmodels_fleiss(table, method="fleiss"))


def test_it_equals_statsmodels_on_fleiss_worked_example():
    labels = rows_from_table(FLEISS_TABLE)
    result = fleiss_kappa(labels, categories=LEVELS, bootstrap=0)
    assert result.kappa == pytest.approx(reference(labels), abs=1e-12)
    assert result.kappa == pytest.approx(0.20993, abs=1e-5)  # the value Fleiss' example is known for
    assert result.n_units == 10


@settings(max_examples=60, deadline=None)
@given(st.integers(2, 6).flatmap(lambda raters: st.lists(
    st.lists(st.sampled_from(LEVELS[:3]), min_size=raters, max_size=raters), min_size=2, max_size=40)))
def test_it_equals_statsmodels_on_random_complete_data(units):
    labels = [list(column) for column in zip(*units, strict=True)]
    ours = fleiss_kappa(labels, categories=LEVELS, bootstrap=0).kappa
    theirs = reference(labels)
    if np.isnan(theirs):
        assert ours is None  # every label the same: undefined, never nan
    else:
        assert ours == pytest.approx(theirs, abs=1e-9)


def test_missing_labels_leave_a_unit_in_with_the_labels_it_has():
    complete = [["LEVEL_1", "LEVEL_1", "LEVEL_2"], ["LEVEL_1", "LEVEL_2", "LEVEL_2"], ["LEVEL_1", "LEVEL_1", "LEVEL_2"]]
    with_gap = [row[:] for row in complete] + [["LEVEL_3", None, "LEVEL_0"]]
    assert fleiss_kappa(with_gap, categories=LEVELS, bootstrap=0).n_units == 3
    lonely = [["LEVEL_1", None], [None, "LEVEL_2"]]
    assert fleiss_kappa(lonely, categories=LEVELS, bootstrap=0).kappa is None


def test_the_interval_brackets_the_estimate_and_is_reproducible():
    labels = rows_from_table(FLEISS_TABLE)
    first = fleiss_kappa(labels, categories=LEVELS, bootstrap=500, seed=3)
    again = fleiss_kappa(labels, categories=LEVELS, bootstrap=500, seed=3)
    assert first.ci95 == again.ci95
    assert first.ci95.low < first.kappa < first.ci95.high


def test_it_works_on_the_presence_of_a_code_in_sets():
    sets = [[frozenset({"A"}), frozenset({"A", "B"}), frozenset()], [frozenset({"A"}), frozenset({"A", "C"}), frozenset()]]
    result = fleiss_kappa(sets, level="binary:A", bootstrap=0)
    assert result.level == "binary:A" and result.kappa == pytest.approx(1.0)


@pytest.mark.parametrize("level", ["ordinal", "masi", "cubic"])
def test_it_refuses_levels_without_categories_to_count(level):
    with pytest.raises(ValueError, match="level"):
        fleiss_kappa([["LEVEL_1"], ["LEVEL_1"]], level=level, categories=LEVELS)


def test_an_unknown_label_is_an_error_not_a_silent_category():
    with pytest.raises(ValueError, match="not one of the categories"):
        fleiss_kappa([["LEVEL_1", "LEVEL_9"], ["LEVEL_1", "LEVEL_1"]], categories=LEVELS)
