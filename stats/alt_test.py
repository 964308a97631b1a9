"""The Alternative Annotator Test (Calderon, Reichart & Dror, "The Alternative Annotator Test for LLM-as-a-Judge:
How to Statistically Justify Replacing Human Annotators with LLMs", ACL 2025): may an LLM annotator replace one
of several human raters?

For each human rater j in turn, over the items j labelled together with at least two other raters: the LLM's
alignment with the others, S(f) = mean_k sim(f, h_k), is compared with j's own, S(h_j) = mean_k sim(h_j, h_k)
(k over the other raters). W_f = 1 if S(f) >= S(h_j), W_h = 1 if S(h_j) >= S(f). A one-sided one-sample t-test of
d = W_h - W_f against the cost-benefit margin epsilon tests H0: mean(d) >= epsilon, i.e. the rater is better than
the LLM by at least epsilon; rejecting it means the LLM "wins" against rater j. The Benjamini–Yekutieli procedure
controls the false discovery rate over the m raters at q; the winning rate is the share of raters the LLM wins
against, and the LLM passes when it is at least 0.5. The advantage probability rho_j = mean(W_f) says how often
the LLM represents the others at least as well as rater j does.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from .agreement import masi_distance

PASSING_RATE = 0.5
MIN_OTHER_RATERS = 2  # so at least 3 raters on an item


def same_label(a: object, b: object) -> float:
    """Accuracy-style alignment of two labels (the paper's choice for discrete labels)."""
    return 1.0 if a == b else 0.0


def masi_similarity(a: frozenset, b: frozenset) -> float:
    """Alignment of two code sets: 1 - the MASI distance."""
    return 1.0 - masi_distance(a, b)


@dataclass(frozen=True)
class RaterOutcome:
    rater: str
    items: int  # items of this rater compared (the LLM labelled them, and at least 2 other raters)
    llm_advantage: float | None  # rho_f: how often the LLM represents the others at least as well as the rater
    rater_advantage: float | None  # rho_h: how often the rater does at least as well as the LLM
    p_value: float | None  # None: too few items to test
    wins: bool  # H0 rejected after the Benjamini–Yekutieli correction: the LLM may replace this rater


@dataclass(frozen=True)
class AltTestResult:
    epsilon: float
    q: float
    raters: tuple[RaterOutcome, ...]
    winning_rate: float | None  # over the raters tested; None when none had enough items
    advantage_probability: float | None  # mean rho_f over the raters tested

    @property
    def passed(self) -> bool:
        return self.winning_rate is not None and self.winning_rate >= PASSING_RATE

    @property
    def tested(self) -> int:
        return sum(r.p_value is not None for r in self.raters)


def _p_value(differences: np.ndarray, epsilon: float) -> float:
    """One-sided one-sample t-test of H0: mean >= epsilon against H1: mean < epsilon."""
    mean, n = float(differences.mean()), len(differences)
    spread = float(differences.std(ddof=1)) if n > 1 else 0.0
    if spread == 0.0:  # no variation: the mean is what it is
        return 0.0 if mean < epsilon else 1.0
    return student_t_cdf((mean - epsilon) / (spread / math.sqrt(n)), n - 1)


def _incomplete_beta_fraction(a: float, b: float, x: float) -> float:
    """The continued fraction of the regularised incomplete beta function (modified Lentz's method)."""
    tiny, c, d = 1e-300, 1.0, 1.0 - (a + b) * x / (a + 1)
    d = 1.0 / (d if abs(d) > tiny else tiny)
    result = d
    for m in range(1, 300):
        for numerator in (m * (b - m) * x / ((a + 2 * m - 1) * (a + 2 * m)),
                          -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1))):
            d = 1.0 + numerator * d
            d = 1.0 / (d if abs(d) > tiny else tiny)
            c = 1.0 + numerator / c
            c = c if abs(c) > tiny else tiny
            result *= d * c
        if abs(d * c - 1.0) < 1e-15:
            break
    return result


def student_t_cdf(value: float, df: float) -> float:
    """Student's t distribution function, through the regularised incomplete beta function: written out because
    loading SciPy for it would cost a quarter of a second of every quality command (tests check it against
    SciPy's)."""
    # x and 1 - x each computed directly: near value 0, 1 - x by subtraction would lose its digits.
    x, y = df / (df + value * value), value * value / (df + value * value)
    a, b = df / 2, 0.5
    if y == 0:
        tail = 1.0
    elif x == 0:
        tail = 0.0
    else:
        front = math.exp(math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log(y))
        if x < (a + 1) / (a + b + 2):
            tail = front * _incomplete_beta_fraction(a, b, x) / a
        else:
            tail = 1.0 - front * _incomplete_beta_fraction(b, a, y) / b
    return 0.5 * tail if value < 0 else 1.0 - 0.5 * tail


def benjamini_yekutieli(p_values: Sequence[float], q: float) -> list[bool]:
    """Which hypotheses to reject with the false discovery rate at ``q`` under any dependence (BY 2001)."""
    m = len(p_values)
    if m == 0:
        return []
    order = np.argsort(p_values, kind="stable")
    harmonic = float(np.sum(1.0 / np.arange(1, m + 1)))
    thresholds = np.arange(1, m + 1) / (m * harmonic) * q
    passing = np.nonzero(np.asarray(p_values, dtype=float)[order] <= thresholds)[0]
    rejected = np.zeros(m, dtype=bool)
    if passing.size:
        rejected[order[: passing.max() + 1]] = True
    return rejected.tolist()


def _indicators(llm: np.ndarray, raters: np.ndarray, similarity: np.ndarray, rater: int) -> tuple[np.ndarray,
                                                                                                np.ndarray]:
    """W_f and W_h over the items rater ``rater`` labelled with at least MIN_OTHER_RATERS others (and the LLM)."""
    present = raters >= 0
    others = present.copy()
    others[:, rater] = False
    count = others.sum(axis=1)
    eligible = (llm >= 0) & present[:, rater] & (count >= MIN_OTHER_RATERS)
    safe = np.where(present, raters, 0)[eligible]
    mask = others[eligible]
    # Sums over the same others: comparing them is comparing the means.
    llm_score = (similarity[llm[eligible][:, None], safe] * mask).sum(axis=1)
    rater_score = (similarity[raters[eligible, rater][:, None], safe] * mask).sum(axis=1)
    tolerance = 1e-12 * np.maximum(count[eligible], 1)
    return (llm_score >= rater_score - tolerance).astype(float), (rater_score >= llm_score - tolerance).astype(float)


def encoded_alt_test(llm: np.ndarray, raters: np.ndarray, similarity: np.ndarray, names: Sequence[str], *,
                     epsilon: float = 0.2, q: float = 0.05, min_items: int = 30) -> AltTestResult:
    """``alt_test`` on labels encoded as category indices: ``llm`` (items,), ``raters`` (items x raters), -1 for
    none; ``similarity`` (categories x categories) aligns two labels; ``names`` names the rater columns."""
    found = []
    for column, rater in enumerate(names):
        llm_wins, rater_wins = _indicators(llm, raters, similarity, column)
        enough = len(llm_wins) >= max(min_items, 2)
        found.append((rater, len(llm_wins), llm_wins.mean() if len(llm_wins) else None,
                      rater_wins.mean() if len(rater_wins) else None,
                      _p_value(rater_wins - llm_wins, epsilon) if enough else None))
    tested = [p for *_, p in found if p is not None]
    rejected = iter(benjamini_yekutieli(tested, q))
    outcomes = tuple(RaterOutcome(rater, items, None if f is None else float(f), None if h is None else float(h),
                                  p, next(rejected) if p is not None else False)
                     for rater, items, f, h, p in found)
    tested_outcomes = [o for o in outcomes if o.p_value is not None]
    return AltTestResult(
        epsilon=epsilon, q=q, raters=outcomes,
        winning_rate=float(np.mean([o.wins for o in tested_outcomes])) if tested_outcomes else None,
        advantage_probability=float(np.mean([o.llm_advantage for o in tested_outcomes])) if tested_outcomes
        else None)


def alt_test(llm: Sequence[object | None], humans: Sequence[Mapping[str, object]], *,
             similarity: Callable[[object, object], float] = same_label, epsilon: float = 0.2, q: float = 0.05,
             min_items: int = 30) -> AltTestResult:
    """``llm[i]`` is the LLM's label of item i (None: none); ``humans[i]`` maps each rater of item i to their
    label. A rater with fewer than ``min_items`` comparable items is listed but not tested."""
    names = sorted({name for labels in humans for name in labels})
    values = list(dict.fromkeys([*(v for v in llm if v is not None),
                                 *(v for labels in humans for v in labels.values())]))
    index = {value: k for k, value in enumerate(values)}
    matrix = np.array([[similarity(a, b) for b in values] for a in values]).reshape(len(values), len(values))
    encoded_llm = np.array([-1 if v is None else index[v] for v in llm], dtype=np.int64)
    encoded = np.array([[index[labels[name]] if name in labels else -1 for name in names] for labels in humans],
                       dtype=np.int64).reshape(len(humans), len(names))
    return encoded_alt_test(encoded_llm, encoded, matrix, names, epsilon=epsilon, q=q, min_items=min_items)
