"""Quality of labels against reference labels: accuracy, macro-F1, per-class precision / recall / F1, Cohen's kappa
and the confusion matrix, each with a 95 % bootstrap interval; plus the two consensus labellers (majority vote and
Dawid–Skene) that stand beside the annotators as rows of their own. Plain NumPy.

Conventions (those of ``stats.agreement``):

* ``given[i]`` is the label under test for item ``i``; ``None`` is no label (a malformed answer): such items are not
  compared (the caller reports the share of them). ``reference[i]`` lists the item's reference labels, one per
  rater (empty: the item is not in the reference). An item with several raters gives one comparison per rater.
* One-code domains (``ORDINAL``, ``NOMINAL``) take codes; code-set domains (``SET``) take frozensets of codes.
* Every figure agrees with scikit-learn on the same comparisons: ``accuracy_score`` (for sets, exact set match:
  sklearn's subset accuracy on indicator matrices), ``f1_score(average="macro", zero_division=0)`` over the classes
  that occur in either labelling (sklearn's ``labels=None``; for sets, the codes that occur), ``precision`` /
  ``recall`` / ``f1`` per class, ``confusion_matrix(labels=codes)`` (rows: reference, columns: given), and
  ``cohen_kappa_score(labels=codes, weights="quadratic")`` for ordinal domains, unweighted for nominal ones. For code
  sets kappa is 1 - D_o / D_e with the MASI distance (Passonneau 2006) between sets.
* The bootstrap resamples items (all of an item's comparisons together), ``bootstrap`` times with a fixed seed, and
  gives the 2.5th and 97.5th percentiles of the resampled values that are defined. An undefined figure is ``None``.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from .agreement import UNDEFINED_INTERVAL, Interval, masi_distance_matrix, resample_weights

ORDINAL = "ordinal"
NOMINAL = "nominal"
SET = "set"
KINDS = (ORDINAL, NOMINAL, SET)


@dataclass(frozen=True)
class Estimate:
    value: float | None
    ci95: Interval = UNDEFINED_INTERVAL


@dataclass(frozen=True)
class ClassScores:
    label: str
    support: int  # reference labels of this class
    predicted: int  # given labels of this class
    precision: Estimate
    recall: Estimate
    f1: Estimate


@dataclass(frozen=True)
class QualityResult:
    kind: str
    items: int  # items compared (a label given and a reference label)
    n: int  # comparisons (items x their raters)
    accuracy: Estimate
    macro_f1: Estimate
    kappa: Estimate
    kappa_weights: str  # "quadratic" | "none" | "masi"
    per_class: tuple[ClassScores, ...]
    labels: tuple[str, ...]  # the confusion matrix's rows and columns (codes), empty for code sets
    confusion: tuple[tuple[int, ...], ...]  # rows: reference, columns: given; empty for code sets


# --------------------------------------------------------------------------------------------------- encoding


@dataclass(frozen=True)
class _Encoded:
    """Every comparison as (item, reference category, given category), the categories, which classes each
    category holds (identity for one code; a set's codes), and the disagreement between categories."""

    items: np.ndarray  # the item of each comparison, in item order
    truth: np.ndarray
    given: np.ndarray
    n_items: int  # every item given, compared or not: the bootstrap resamples them all
    classes: tuple[str, ...]
    membership: np.ndarray  # categories x classes, 0/1
    disagreement: np.ndarray  # categories x categories


def _one_code(categories: Sequence[Hashable], kind: str) -> tuple[dict, np.ndarray, np.ndarray]:
    index = {category: k for k, category in enumerate(categories)}
    if len(index) != len(categories) or None in index:
        raise ValueError("categories must be distinct and must not contain None (None means missing)")
    rank = np.arange(len(categories))
    disagreement = (rank[:, None] - rank[None, :]) ** 2 if kind == ORDINAL else (rank[:, None] != rank[None, :])
    return index, np.eye(len(categories)), disagreement.astype(float)


def _sets(values: list[frozenset], codes: Sequence[str] | None) -> tuple[dict, np.ndarray, np.ndarray, tuple]:
    for value in values:
        if not isinstance(value, frozenset | set):
            raise TypeError(f"code set labels must be sets, got {value!r}")
    universe = list(codes) if codes is not None else sorted({c for value in values for c in value}, key=str)
    stray = {c for value in values for c in value} - set(universe)
    if stray:
        raise ValueError(f"codes {sorted(map(str, stray))} are not among the categories")
    distinct = list(dict.fromkeys(frozenset(value) for value in values))
    position = {code: k for k, code in enumerate(universe)}
    membership = np.zeros((len(distinct), len(universe)))
    for row, value in enumerate(distinct):
        membership[row, [position[c] for c in value]] = 1.0
    return ({value: k for k, value in enumerate(distinct)}, membership,
            masi_distance_matrix(distinct) if distinct else np.zeros((0, 0)), tuple(map(str, universe)))


def _encode(given: Sequence[object | None], reference: Sequence[Sequence[object]], kind: str,
            categories: Sequence[Hashable] | None) -> _Encoded:
    if kind not in KINDS:
        raise ValueError(f"unknown kind {kind!r}; expected one of {', '.join(KINDS)}")
    if len(given) != len(reference):
        raise ValueError("one reference entry (a list, maybe empty) per given label is required")
    kept = [(i, label, truth) for i, (label, truths) in enumerate(zip(given, reference, strict=True))
            if label is not None for truth in truths if truth is not None]
    if kind == SET:
        index, membership, disagreement, classes = _sets([v for _, label, truth in kept for v in (label, truth)],
                                                         categories)
    else:
        if categories is None:
            raise ValueError("one-code quality needs the domain's codes")
        index, membership, disagreement = _one_code(categories, kind)
        classes = tuple(map(str, categories))
    try:
        truth = np.array([index[frozenset(t) if kind == SET else t] for _, _, t in kept], dtype=np.int64)
        label = np.array([index[frozenset(g) if kind == SET else g] for _, g, _ in kept], dtype=np.int64)
    except KeyError as exc:
        raise ValueError(f"label {exc.args[0]!r} is not one of the categories") from None
    items = np.array([i for i, _, _ in kept], dtype=np.int64)
    return _Encoded(items, truth, label, len(given), classes, membership, disagreement)


# --------------------------------------------------------------------------------------------------- counting


def _features(encoded: _Encoded) -> np.ndarray:
    """(items x features): per item, the sums of what every figure is a ratio of. Each figure is a ratio of sums
    over comparisons, so a resample's figures need only these sums weighted by how often each item was drawn: one
    matrix product for all resamples. Columns: exact matches, disagreement, then per class true positives,
    reference count and given count, then per category the reference and the given count."""
    truth, given, member = encoded.truth, encoded.given, encoded.membership
    size = len(encoded.disagreement)
    onehot = np.eye(size)
    per_pair = np.hstack([(truth == given)[:, None], encoded.disagreement[truth, given][:, None],
                          member[truth] * member[given], member[truth], member[given], onehot[truth], onehot[given]])
    summed = np.zeros((encoded.n_items, per_pair.shape[1]))
    if len(per_pair):
        # Comparisons come in item order: each item's are one contiguous block.
        starts = np.flatnonzero(np.r_[True, encoded.items[1:] != encoded.items[:-1]])
        summed[encoded.items[starts]] = np.add.reduceat(per_pair, starts, axis=0)
    return summed


@dataclass(frozen=True)
class _Figures:
    """Every figure for each row of item weights; nan where undefined."""

    accuracy: np.ndarray
    macro_f1: np.ndarray
    kappa: np.ndarray
    precision: np.ndarray  # rows x classes
    recall: np.ndarray
    f1: np.ndarray
    support: np.ndarray
    predicted: np.ndarray


def _divide(top: np.ndarray, bottom: np.ndarray, undefined: float = 0.0) -> np.ndarray:
    """top / bottom, ``undefined`` where bottom is 0 (0: scikit-learn's zero_division=0)."""
    return np.divide(top, bottom, out=np.full(np.broadcast_shapes(top.shape, bottom.shape), undefined),
                     where=bottom > 0)


def _figures(sums: np.ndarray, encoded: _Encoded, counts: np.ndarray) -> _Figures:
    """``sums``: (rows x features) weighted sums of ``_features``; ``counts``: comparisons per row."""
    classes = len(encoded.classes)
    matches, disagreement = sums[:, 0], sums[:, 1]
    true_positive, support, predicted = np.split(sums[:, 2:2 + 3 * classes], 3, axis=1)
    truth_counts, given_counts = np.split(sums[:, 2 + 3 * classes:], 2, axis=1)
    precision, recall = _divide(true_positive, predicted), _divide(true_positive, support)
    f1 = _divide(2 * true_positive, support + predicted)
    present = (support + predicted) > 0
    macro = _divide((f1 * present).sum(axis=1), present.sum(axis=1), np.nan)
    expected = _divide(((truth_counts @ encoded.disagreement) * given_counts).sum(axis=1), counts)
    kappa = np.full(counts.shape, np.nan)
    defined = expected > 1e-12  # no expected disagreement: chance explains everything, kappa is undefined
    kappa[defined] = 1.0 - disagreement[defined] / expected[defined]
    return _Figures(_divide(matches, counts, np.nan), macro, kappa, precision, recall, f1, support, predicted)


def _intervals(resampled: np.ndarray) -> list[Interval]:
    """The 2.5th and 97.5th percentiles of each column's defined values (numpy's linear method), all columns at
    once: a quality report asks for hundreds of intervals."""
    values = np.where(np.isfinite(resampled), resampled, np.nan).reshape(len(resampled), -1)
    ordered = np.sort(values, axis=0)  # nan last
    defined = np.isfinite(ordered).sum(axis=0)
    bounds = []
    for fraction in (0.025, 0.975):
        position = np.maximum(defined - 1, 0) * fraction
        low = np.floor(position).astype(np.int64)
        high = np.minimum(low + 1, np.maximum(defined - 1, 0))
        columns = np.arange(values.shape[1])
        below, above = ordered[low, columns], ordered[high, columns]
        bounds.append(below + (above - below) * (position - low))
    return [Interval(float(low), float(high)) if count else UNDEFINED_INTERVAL
            for low, high, count in zip(bounds[0], bounds[1], defined, strict=True)]


def _estimates(points: np.ndarray, resampled: np.ndarray | None) -> list[Estimate]:
    intervals = _intervals(resampled) if resampled is not None else [UNDEFINED_INTERVAL] * len(points)
    return [Estimate(float(p), interval) if np.isfinite(p) else Estimate(None)
            for p, interval in zip(points, intervals, strict=True)]


def _confusion(encoded: _Encoded) -> tuple[tuple[int, ...], ...]:
    size = len(encoded.disagreement)
    cells = np.bincount(encoded.truth * size + encoded.given, minlength=size * size).reshape(size, size)
    return tuple(tuple(int(x) for x in row) for row in cells)


@lru_cache(maxsize=2)
def _single_precision(n_items: int, bootstrap: int, seed: int) -> np.ndarray:
    weights = resample_weights(n_items, bootstrap, seed).astype(np.float32)
    weights.flags.writeable = False
    return weights


def quality(given: Sequence[object | None], reference: Sequence[Sequence[object]], *, kind: str,
            categories: Sequence[Hashable] | None = None, bootstrap: int = 1000, seed: int = 0) -> QualityResult:
    """The labels ``given`` against ``reference`` (see the module's conventions); ``categories`` are the domain's
    codes in order (required for one-code domains; for sets, the codes a set may hold)."""
    encoded = _encode(given, reference, kind, categories)
    features = _features(encoded)
    comparisons = features[:, 2 + 3 * len(encoded.classes):].sum(axis=1) / 2  # each counted as truth and given
    point = _figures(features.sum(axis=0, keepdims=True), encoded, np.array([comparisons.sum()]))
    resampled = None
    if bootstrap > 0 and encoded.n_items > 0:
        weights = _single_precision(encoded.n_items, bootstrap, seed)
        # Weights and features are small whole numbers, exact in single precision: half the memory traffic.
        sums = (weights @ np.column_stack([features, comparisons]).astype(np.float32)).astype(float)
        resampled = _figures(sums[:, :-1], encoded, sums[:, -1])
    names = ("accuracy", "macro_f1", "kappa")
    headline = _estimates(np.array([getattr(point, n)[0] for n in names]),
                          None if resampled is None else np.column_stack([getattr(resampled, n) for n in names]))
    per_class = [_estimates(getattr(point, n)[0], None if resampled is None else getattr(resampled, n))
                 for n in ("precision", "recall", "f1")]
    return QualityResult(
        kind=kind, items=len(np.unique(encoded.items)), n=len(encoded.truth), accuracy=headline[0], macro_f1=headline[1],
        kappa=headline[2], kappa_weights={ORDINAL: "quadratic", NOMINAL: "none", SET: "masi"}[kind],
        per_class=tuple(ClassScores(label, int(point.support[0, c]), int(point.predicted[0, c]), per_class[0][c],
                                    per_class[1][c], per_class[2][c]) for c, label in enumerate(encoded.classes)),
        labels=() if kind == SET else encoded.classes, confusion=() if kind == SET else _confusion(encoded))


def share(flags: Sequence[bool], among: Sequence[bool] | None = None, *, bootstrap: int = 1000,
          seed: int = 0) -> Estimate:
    """The share of true ``flags`` among the items ``among`` marks (all when None), e.g. malformed answers among
    those answered, with its bootstrap interval over all the items; None when ``among`` marks none."""
    values = np.asarray(flags, dtype=float)
    counted = np.ones_like(values) if among is None else np.asarray(among, dtype=float)
    if counted.sum() == 0:
        return Estimate(None)
    resampled = None
    if bootstrap > 0:
        weights = resample_weights(values.size, bootstrap, seed)
        resampled = _divide(weights @ (values * counted), weights @ counted, np.nan)
    return _estimates(np.array([(values * counted).sum() / counted.sum()]), resampled)[0]


# --------------------------------------------------------------------------------------------------- consensus


def dawid_skene(codes: np.ndarray, n_classes: int, *, iterations: int = 100, tolerance: float = 1e-6,
                smoothing: float = 0.01) -> np.ndarray:
    """Dawid & Skene (1979): each annotator's confusion matrix and the class priors by EM, started from the
    annotators' vote shares. ``codes`` is (annotators x items) of class indices with -1 for missing; returns the
    (items x classes) posterior, a row of nan for an item nobody labelled. ``smoothing`` (a pseudo-count) keeps an
    annotator who never used a class from ruling it out for good."""
    annotators, n_items = codes.shape
    given = codes >= 0
    onehot = np.zeros((annotators, n_items, n_classes))
    a, i = np.nonzero(given)
    onehot[a, i, codes[a, i]] = 1.0
    votes = onehot.sum(axis=0)
    labelled = votes.sum(axis=1) > 0
    posterior = np.divide(votes, votes.sum(axis=1, keepdims=True), out=np.zeros_like(votes),
                          where=labelled[:, None])
    for _ in range(iterations):
        priors = (posterior[labelled].sum(axis=0) + smoothing) / (labelled.sum() + smoothing * n_classes)
        # confusion[a, true, given] = P(annotator a says `given` | the class is `true`)
        confusion = np.einsum("it,aig->atg", posterior, onehot) + smoothing
        confusion /= confusion.sum(axis=2, keepdims=True)
        log_post = np.log(priors)[None, :] + np.einsum("aig,atg->it", onehot, np.log(confusion))
        log_post -= log_post.max(axis=1, keepdims=True)
        updated = np.exp(log_post)
        updated /= updated.sum(axis=1, keepdims=True)
        updated[~labelled] = 0.0
        change = np.abs(updated - posterior).max() if n_items else 0.0
        posterior = updated
        if change < tolerance:
            break
    posterior[~labelled] = np.nan
    return posterior


def dawid_skene_labels(labels: Sequence[Sequence[object | None]], *, kind: str,
                       categories: Sequence[Hashable]) -> list[object | None]:
    """The Dawid–Skene consensus per item of ``labels[annotator][item]`` (None: missing): the most probable code
    for one-code domains; for code sets, each code is a yes/no question of its own and the set holds the codes
    more likely present than not (an empty set where none is, unless ``categories`` ends with a none code the
    caller adds itself)."""
    rows = [list(row) for row in labels]
    n_items = len(rows[0]) if rows else 0
    if kind != SET:
        index = {category: k for k, category in enumerate(categories)}
        codes = np.array([[index[v] if v is not None else -1 for v in row] for row in rows],
                         dtype=np.int64).reshape(len(rows), n_items)
        posterior = dawid_skene(codes, len(categories))
        return [None if np.isnan(p).any() else categories[int(np.argmax(p))] for p in posterior]
    present = {}
    for code in categories:
        codes = np.array([[-1 if v is None else int(code in v) for v in row] for row in rows],
                         dtype=np.int64).reshape(len(rows), n_items)
        present[code] = dawid_skene(codes, 2)[:, 1]
    return [None if any(np.isnan(present[c][i]) for c in categories)
            else frozenset(c for c in categories if present[c][i] > 0.5) for i in range(n_items)]
