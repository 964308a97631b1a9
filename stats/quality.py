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

import numpy as np

from .agreement import UNDEFINED_INTERVAL, Interval, masi_distance_matrix, resample_weights

ORDINAL = "ordinal"
NOMINAL = "nominal"
SET = "set"
KINDS = (ORDINAL, NOMINAL, SET)
# Resampled pair counts are built in blocks of at most this many cells, so memory stays bounded on large sets.
BLOCK_CELLS = 4_000_000


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

    items: np.ndarray
    truth: np.ndarray
    given: np.ndarray
    n_items: int
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
    _, items = np.unique(items, return_inverse=True)  # items numbered 0..m-1 among those compared
    return _Encoded(items.astype(np.int64), truth, label, int(items.max()) + 1 if len(items) else 0, classes,
                    membership, disagreement)


# --------------------------------------------------------------------------------------------------- counting


def _pair_counts(encoded: _Encoded, weights: np.ndarray) -> np.ndarray:
    """(rows of weights) x categories x categories: each comparison counted with its item's weight."""
    size = len(encoded.disagreement)
    cells = encoded.truth * size + encoded.given
    out = np.empty((weights.shape[0], size * size))
    block = max(1, BLOCK_CELLS // max(len(cells), size * size, 1))
    for start in range(0, weights.shape[0], block):
        chunk = weights[start:start + block]
        rows = np.arange(chunk.shape[0])[:, None] * (size * size) + cells[None, :]
        out[start:start + block] = np.bincount(rows.ravel(), weights=chunk[:, encoded.items].ravel(),
                                               minlength=chunk.shape[0] * size * size).reshape(-1, size * size)
    return out.reshape(-1, size, size)


def _divide(top: np.ndarray, bottom: np.ndarray) -> np.ndarray:
    """top / bottom, 0 where bottom is 0 (scikit-learn's zero_division=0)."""
    return np.divide(top, bottom, out=np.zeros_like(top, dtype=float), where=bottom > 0)


@dataclass(frozen=True)
class _Figures:
    """Every figure for each row of pair counts; nan where undefined."""

    accuracy: np.ndarray
    macro_f1: np.ndarray
    kappa: np.ndarray
    precision: np.ndarray  # rows x classes
    recall: np.ndarray
    f1: np.ndarray
    support: np.ndarray
    predicted: np.ndarray


def _figures(counts: np.ndarray, encoded: _Encoded) -> _Figures:
    total = counts.sum(axis=(1, 2))
    accuracy = np.divide(np.trace(counts, axis1=1, axis2=2), total, out=np.full(total.shape, np.nan),
                         where=total > 0)
    member = encoded.membership
    # Per class: a comparison is a true positive where both categories hold the class.
    true_positive = np.einsum("btg,tc,gc->bc", counts, member, member)
    support = counts.sum(axis=2) @ member
    predicted = counts.sum(axis=1) @ member
    precision, recall = _divide(true_positive, predicted), _divide(true_positive, support)
    f1 = _divide(2 * true_positive, support + predicted)
    present = (support + predicted) > 0
    macro = np.divide((f1 * present).sum(axis=1), present.sum(axis=1), out=np.full(total.shape, np.nan),
                      where=present.sum(axis=1) > 0)
    truth_share, given_share = counts.sum(axis=2), counts.sum(axis=1)
    disagreement = encoded.disagreement
    observed = (counts * disagreement).sum(axis=(1, 2))
    expected = np.einsum("bt,tg,bg->b", truth_share, disagreement, given_share)
    expected = np.divide(expected, total, out=np.zeros_like(expected), where=total > 0)
    kappa = np.full(total.shape, np.nan)
    defined = expected > 1e-12  # no expected disagreement: chance explains everything, kappa is undefined
    kappa[defined] = 1.0 - observed[defined] / expected[defined]
    return _Figures(accuracy, macro, kappa, precision, recall, f1, support, predicted)


def _interval(values: np.ndarray) -> Interval:
    defined = values[np.isfinite(values)]
    if defined.size == 0:
        return UNDEFINED_INTERVAL
    low, high = np.percentile(defined, [2.5, 97.5])
    return Interval(float(low), float(high))


def _estimate(point: float, resampled: np.ndarray | None) -> Estimate:
    if not np.isfinite(point):
        return Estimate(None)
    return Estimate(float(point), _interval(resampled) if resampled is not None else UNDEFINED_INTERVAL)


def quality(given: Sequence[object | None], reference: Sequence[Sequence[object]], *, kind: str,
            categories: Sequence[Hashable] | None = None, bootstrap: int = 1000, seed: int = 0) -> QualityResult:
    """The labels ``given`` against ``reference`` (see the module's conventions); ``categories`` are the domain's
    codes in order (required for one-code domains; for sets, the codes a set may hold)."""
    encoded = _encode(given, reference, kind, categories)
    point = _figures(_pair_counts(encoded, np.ones((1, encoded.n_items))), encoded)
    resampled = None
    if bootstrap > 0 and encoded.n_items > 0:
        resampled = _figures(_pair_counts(encoded, resample_weights(encoded.n_items, bootstrap, seed)), encoded)
    pick = (lambda name, column=None: None if resampled is None else
            (getattr(resampled, name) if column is None else getattr(resampled, name)[:, column]))
    per_class = tuple(
        ClassScores(label, int(point.support[0, c]), int(point.predicted[0, c]),
                    _estimate(point.precision[0, c], pick("precision", c)),
                    _estimate(point.recall[0, c], pick("recall", c)), _estimate(point.f1[0, c], pick("f1", c)))
        for c, label in enumerate(encoded.classes))
    confusion = () if kind == SET else tuple(
        tuple(int(x) for x in row) for row in _pair_counts(encoded, np.ones((1, encoded.n_items)))[0])
    return QualityResult(
        kind=kind, items=encoded.n_items, n=len(encoded.truth),
        accuracy=_estimate(point.accuracy[0], pick("accuracy")),
        macro_f1=_estimate(point.macro_f1[0], pick("macro_f1")),
        kappa=_estimate(point.kappa[0], pick("kappa")),
        kappa_weights={ORDINAL: "quadratic", NOMINAL: "none", SET: "masi"}[kind], per_class=per_class,
        labels=() if kind == SET else encoded.classes, confusion=confusion)


def share(flags: Sequence[bool], *, bootstrap: int = 1000, seed: int = 0) -> Estimate:
    """The share of true flags (e.g. malformed answers among the items with a reference label), with its
    bootstrap interval over the items; None when there are none."""
    values = np.asarray(flags, dtype=float)
    if values.size == 0:
        return Estimate(None)
    resampled = None
    if bootstrap > 0:
        weights = resample_weights(values.size, bootstrap, seed)
        resampled = (weights @ values) / values.size
    return _estimate(float(values.mean()), resampled)


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
