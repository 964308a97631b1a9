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
# Up to this many categories, counting them per resample is one matrix product (see _category_sums).
FEW_CATEGORIES = 32


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
class Scale:
    """What labels are encoded against: the categories (a one-code domain's codes; for code sets every distinct
    set seen), the classes the per-class scores are of (the codes), which classes each category holds, and the
    disagreement between categories (quadratic, nominal or MASI). Encoding once per domain lets every labeller of
    the domain be scored against the same reference without re-reading it."""

    kind: str
    values: tuple
    classes: tuple[str, ...]
    membership: np.ndarray  # categories x classes, 0/1
    disagreement: np.ndarray  # categories x categories
    index: dict

    def encode(self, labels: Sequence[object | None]) -> np.ndarray:
        """Category indices, -1 for None."""
        try:
            return np.array([-1 if v is None else self.index[frozenset(v) if self.kind == SET else v]
                             for v in labels], dtype=np.int64)
        except KeyError as exc:
            raise ValueError(f"label {exc.args[0]!r} is not one of the categories") from None
        except TypeError:
            raise TypeError(f"code set labels must be sets, got {labels!r:.80}") from None

    def encode_raters(self, reference: Sequence[Sequence[object]]) -> np.ndarray:
        """(items x most raters) category indices, -1 where an item has fewer raters."""
        width = max((len(labels) for labels in reference), default=0)
        encoded = np.full((len(reference), width), -1, dtype=np.int64)
        for row, labels in enumerate(reference):
            encoded[row, :len(labels)] = self.encode(labels)
        return encoded


def scale(kind: str, categories: Sequence[Hashable] | None, values: Sequence[object | None] = ()) -> Scale:
    """The scale of a domain: ``categories`` are its codes in order (required for one-code domains; for sets the
    codes a set may hold, else those seen); ``values`` the labels that will be encoded (needed for sets)."""
    if kind not in KINDS:
        raise ValueError(f"unknown kind {kind!r}; expected one of {', '.join(KINDS)}")
    if kind != SET:
        if categories is None:
            raise ValueError("one-code quality needs the domain's codes")
        index = {category: k for k, category in enumerate(categories)}
        if len(index) != len(categories) or None in index:
            raise ValueError("categories must be distinct and must not contain None (None means missing)")
        rank = np.arange(len(categories))
        disagreement = (rank[:, None] - rank[None, :]) ** 2 if kind == ORDINAL else rank[:, None] != rank[None, :]
        return Scale(kind, tuple(categories), tuple(map(str, categories)), np.eye(len(categories)),
                     disagreement.astype(float), index)
    try:  # each distinct label checked once
        given = dict.fromkeys(frozenset(v) if isinstance(v, set) else v for v in values if v is not None)
    except TypeError:  # unhashable: no set of codes either
        raise TypeError(f"code set labels must be sets, got {values!r:.80}") from None
    for value in given:
        if not isinstance(value, frozenset | set):
            raise TypeError(f"code set labels must be sets, got {value!r}")
    distinct = list(dict.fromkeys(frozenset(value) for value in given))
    seen = {c for value in distinct for c in value}
    universe = list(categories) if categories is not None else sorted(seen, key=str)
    stray = seen - set(universe)
    if stray:
        raise ValueError(f"codes {sorted(map(str, stray))} are not among the categories")
    position = {code: k for k, code in enumerate(universe)}
    membership = np.zeros((len(distinct), len(universe)))
    for row, value in enumerate(distinct):
        membership[row, [position[c] for c in value]] = 1.0
    return Scale(SET, tuple(distinct), tuple(map(str, universe)), membership,
                 masi_distance_matrix(distinct) if distinct else np.zeros((0, 0)),
                 {value: k for k, value in enumerate(distinct)})


@dataclass(frozen=True)
class _Encoded:
    """Every comparison as (item, reference category, given category), in item order, on its scale."""

    items: np.ndarray
    truth: np.ndarray
    given: np.ndarray
    n_items: int  # every item given, compared or not: the bootstrap resamples them all
    scale: Scale


def _comparisons(given: np.ndarray, reference: np.ndarray, on: Scale) -> _Encoded:
    if reference.ndim != 2 or len(reference) != len(given):
        raise ValueError("one row of reference labels (maybe all -1) per given label is required")
    items, raters = np.nonzero((given[:, None] >= 0) & (reference >= 0))  # row-major: in item order
    return _Encoded(items, reference[items, raters], given[items], len(given), on)


# --------------------------------------------------------------------------------------------------- counting


def _features(encoded: _Encoded) -> np.ndarray:
    """(items x features): per item, the sums of what every figure but kappa's chance term is a ratio of: exact
    matches, disagreement, then per class true positives, reference count and given count, and the comparisons.
    A resample's figures need only these sums weighted by how often each item was drawn: one matrix product for
    all resamples."""
    truth, given, items = encoded.truth, encoded.given, encoded.items
    member = encoded.scale.membership
    per_pair = np.hstack([(truth == given)[:, None], encoded.scale.disagreement[truth, given][:, None],
                          member[truth] * member[given], member[truth], member[given], np.ones((len(truth), 1))])
    summed = np.zeros((encoded.n_items, per_pair.shape[1]))
    if len(per_pair):
        # Comparisons come in item order: each item's are one contiguous block.
        starts = np.flatnonzero(np.r_[True, items[1:] != items[:-1]])
        summed[items[starts]] = np.add.reduceat(per_pair, starts, axis=0)
    return summed


def _category_sums(weights: np.ndarray, by_item: np.ndarray, items: np.ndarray, categories: np.ndarray, size: int,
                   times: np.ndarray | None = None) -> np.ndarray:
    """(rows x categories): per row of item weights, the weighted count of each category over (item, category)
    entries (each counted ``times`` over); ``by_item`` is ``weights`` transposed (items x rows, contiguous). A few
    categories (one-code domains): one matrix product with the items' counts. Many (the distinct sets of a code-set
    domain): entries sorted by category and their items' rows of ``by_item`` summed in runs, one pass over the
    entries, where the product would pay for every category of every item (rows, not columns: a gathered row is
    contiguous, half the time of gathering the columns of ``weights``)."""
    found = np.zeros((weights.shape[0], size))
    if len(items) and size <= FEW_CATEGORIES:
        counts = np.zeros((weights.shape[1], size), dtype=np.float32)
        np.add.at(counts, (items, categories), 1.0 if times is None else times)
        found[:] = weights @ counts
    elif len(items):
        order = np.argsort(categories, kind="stable")
        ordered = categories[order]
        starts = np.flatnonzero(np.r_[True, ordered[1:] != ordered[:-1]])
        rows = by_item[items[order]]  # a copy: scaled in place
        if times is not None:
            rows *= times[order][:, None]
        found[:, ordered[starts]] = np.add.reduceat(rows, starts, axis=0).T
    return found


@dataclass(frozen=True)
class PreparedReference:
    """A domain's reference labels encoded and resampled once, to score every labeller of the domain against: the
    scale, the labels (items x raters, -1 for none), the item weights (row 0 all ones: the estimate itself; then one
    row per bootstrap resample) and the reference's category counts under each row of weights, over every item."""

    scale: Scale
    labels: np.ndarray
    weights: np.ndarray
    by_item: np.ndarray  # the weights transposed: items x rows
    truth_counts: np.ndarray
    seed: int


@lru_cache(maxsize=4)
def _weights(n_items: int, bootstrap: int, seed: int, dtype: type = np.float32) -> np.ndarray:
    """Row 0 all ones, then the resamples' counts: small whole numbers, exact in single precision (half the
    memory traffic of the products)."""
    rows = [np.ones((1, n_items), dtype=dtype)]
    if bootstrap > 0 and n_items > 0:
        rows.append(resample_weights(n_items, bootstrap, seed).astype(dtype))
    weights = np.vstack(rows)
    weights.flags.writeable = False
    return weights


@lru_cache(maxsize=4)
def _by_item(n_items: int, bootstrap: int, seed: int) -> np.ndarray:
    """``_weights`` transposed and contiguous: an item's weight in every row, side by side."""
    by_item = np.ascontiguousarray(_weights(n_items, bootstrap, seed).T)
    by_item.flags.writeable = False
    return by_item


def prepare(reference: np.ndarray, on: Scale, *, bootstrap: int = 1000, seed: int = 0) -> PreparedReference:
    if reference.ndim != 2:
        raise ValueError("the reference labels must be (items x raters), -1 for none")
    weights, by_item = _weights(len(reference), bootstrap, seed), _by_item(len(reference), bootstrap, seed)
    items, raters = np.nonzero(reference >= 0)
    return PreparedReference(on, reference, weights, by_item,
                             _category_sums(weights, by_item, items, reference[items, raters], len(on.disagreement)),
                             seed)


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


def _figures(sums: np.ndarray, truth_counts: np.ndarray, given_counts: np.ndarray, on: Scale) -> _Figures:
    """``sums``: (rows x features) weighted sums of ``_features``; the category counts of each side per row."""
    classes = len(on.classes)
    matches, disagreement, counts = sums[:, 0], sums[:, 1], sums[:, -1]
    true_positive, support, predicted = np.split(sums[:, 2:2 + 3 * classes], 3, axis=1)
    precision, recall = _divide(true_positive, predicted), _divide(true_positive, support)
    f1 = _divide(2 * true_positive, support + predicted)
    present = (support + predicted) > 0
    macro = _divide((f1 * present).sum(axis=1), present.sum(axis=1), np.nan)
    expected = _divide(((truth_counts @ on.disagreement) * given_counts).sum(axis=1), counts)
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
    size = len(encoded.scale.disagreement)
    cells = np.bincount(encoded.truth * size + encoded.given, minlength=size * size).reshape(size, size)
    return tuple(tuple(int(x) for x in row) for row in cells)


def quality(given: Sequence[object | None], reference: Sequence[Sequence[object]], *, kind: str,
            categories: Sequence[Hashable] | None = None, bootstrap: int = 1000, seed: int = 0) -> QualityResult:
    """The labels ``given`` against ``reference`` (see the module's conventions); ``categories`` are the domain's
    codes in order (required for one-code domains; for sets, the codes a set may hold)."""
    if len(given) != len(reference):
        raise ValueError("one reference entry (a list, maybe empty) per given label is required")
    on = scale(kind, categories, [*given, *(v for labels in reference for v in labels)] if kind == SET else ())
    return scored(on.encode(given), prepare(on.encode_raters(reference), on, bootstrap=bootstrap, seed=seed))


def scored(given: np.ndarray, reference: PreparedReference) -> QualityResult:
    """``quality`` of labels encoded against the reference's scale (``given``: one per item, -1 for none)."""
    on, weights, by_item = reference.scale, reference.weights, reference.by_item
    encoded = _comparisons(given, reference.labels, on)
    size = len(on.disagreement)
    features = _features(encoded)
    # Counts are whole numbers, exact in single precision; the disagreement (MASI distances) is not.
    sums = (weights @ features.astype(np.float32)).astype(float)
    sums[:, 1] = _weights(len(given), len(weights) - 1, reference.seed, np.float64) @ features[:, 1]
    # The reference's counts over the compared items: those over every item, less the items without a label here.
    unlabelled = (given < 0)[:, None] & (reference.labels >= 0)
    items, raters = np.nonzero(unlabelled)
    truth_counts = reference.truth_counts - _category_sums(weights, by_item, items,
                                                                reference.labels[items, raters], size)
    compared = np.unique(encoded.items)
    per_item = np.bincount(encoded.items, minlength=encoded.n_items)[compared].astype(np.float32)
    given_counts = _category_sums(weights, by_item, compared, given[compared], size, per_item)
    figures = _figures(sums, truth_counts, given_counts, on)
    resampled = len(weights) > 1

    def split(values: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        return values[0], (values[1:] if resampled else None)

    names = ("accuracy", "macro_f1", "kappa")
    headline = _estimates(*split(np.column_stack([getattr(figures, n) for n in names])))
    per_class = [_estimates(*split(getattr(figures, n))) for n in ("precision", "recall", "f1")]
    return QualityResult(
        kind=on.kind, items=len(compared), n=len(encoded.truth), accuracy=headline[0], macro_f1=headline[1],
        kappa=headline[2], kappa_weights={ORDINAL: "quadratic", NOMINAL: "none", SET: "masi"}[on.kind],
        per_class=tuple(ClassScores(label, int(figures.support[0, c]), int(figures.predicted[0, c]),
                                    per_class[0][c], per_class[1][c], per_class[2][c])
                        for c, label in enumerate(on.classes)),
        labels=() if on.kind == SET else on.classes, confusion=() if on.kind == SET else _confusion(encoded))


def share(flags: Sequence[bool], among: Sequence[bool] | None = None, *, bootstrap: int = 1000,
          seed: int = 0) -> Estimate:
    """The share of true ``flags`` among the items ``among`` marks (all when None), e.g. malformed answers among
    those answered, with its bootstrap interval over all the items; None when ``among`` marks none."""
    return shares([flags], among, bootstrap=bootstrap, seed=seed)[0]


def shares(flags: Sequence[Sequence[bool]], among: Sequence[bool] | None = None, *, bootstrap: int = 1000,
           seed: int = 0) -> list[Estimate]:
    """``share`` of several flags over the same items, resampled together."""
    values = np.asarray(flags, dtype=float).reshape(len(flags), -1)
    counted = np.ones(values.shape[1]) if among is None else np.asarray(among, dtype=float)
    if counted.sum() == 0:
        return [Estimate(None) for _ in flags]
    columns = np.column_stack([*(values * counted), counted]).astype(np.float32)
    sums = (_weights(values.shape[1], bootstrap, seed) @ columns).astype(float)
    ratios = _divide(sums[:, :-1], sums[:, -1:], np.nan)
    return _estimates(ratios[0], ratios[1:] if len(ratios) > 1 else None)


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


def majority_labels(labels: Sequence[Sequence[object | None]]) -> list[object | None]:
    """The most common label per item of ``labels[annotator][item]`` (None: missing), None on a tie or when nobody
    labelled it: ``stats.agreement.majority_label`` for every item at once."""
    values: dict = {}
    codes = np.array([[-1 if v is None else values.setdefault(v, len(values)) for v in row] for row in labels],
                     dtype=np.int64).reshape(len(labels), -1)
    if codes.size == 0 or not values:
        return [None] * codes.shape[1]
    annotators, items = np.nonzero(codes >= 0)
    counts = np.zeros((codes.shape[1], len(values)), dtype=np.int64)
    np.add.at(counts, (items, codes[annotators, items]), 1)
    ordered = np.sort(counts, axis=1)
    top, second = ordered[:, -1], ordered[:, -2] if len(values) > 1 else np.zeros(len(counts), dtype=np.int64)
    winners = counts.argmax(axis=1)
    distinct = list(values)
    return [distinct[w] if t > 0 and t > s else None for w, t, s in zip(winners, top, second, strict=True)]


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
    # Each distinct set looked up once: which codes it holds, then every code's yes/no answers at once.
    distinct: dict = {}
    index = np.array([[-1 if v is None else distinct.setdefault(v, len(distinct)) for v in row] for row in rows],
                     dtype=np.int64).reshape(len(rows), n_items)
    holds = np.array([[int(code in value) for code in categories] for value in distinct] or [[0] * len(categories)],
                     dtype=np.int64).reshape(max(len(distinct), 1), len(categories))
    answered = index >= 0
    looked_up = np.where(answered, index, 0)
    present = np.empty((n_items, len(categories)))
    for k in range(len(categories)):
        present[:, k] = dawid_skene(np.where(answered, holds[looked_up, k], -1), 2)[:, 1]
    unknown = np.isnan(present).any(axis=1)
    return [None if unknown[i] else frozenset(c for c, p in zip(categories, present[i], strict=True) if p > 0.5)
            for i in range(n_items)]
