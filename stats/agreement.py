"""Inter-annotator agreement for the research export: Krippendorff's alpha, pairwise Cohen's kappa, majority labels.

Conventions shared by every function here:

* ``labels[i][j]`` is annotator ``i``'s label of sample ``j``; ``None`` is a missing value. A malformed answer must
  already have been turned into ``None`` by the caller: it is never a category of its own.
* An undefined statistic is ``None``, never ``nan`` and never an exception, so that a domain in which the annotators
  happen not to vary still exports a row.

Alpha uses the coincidence-matrix formulation, ``alpha = 1 - D_o / D_e``. Every pairable unit (a sample with at least
two labels) contributes a fixed share to the coincidence matrix, so a bootstrap resample of units is only a weighted
sum of those shares: one matrix product for all resamples instead of re-running the estimator on rebuilt data.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Hashable, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from functools import lru_cache
from itertools import combinations

import krippendorff
import numpy as np

NOMINAL = "nominal"
ORDINAL = "ordinal"
MASI = "masi"
BINARY_PREFIX = "binary:"

MISSING = -1  # index of a missing label in the encoded (annotators x units) matrix


@dataclass(frozen=True)
class Interval:
    low: float | None
    high: float | None


UNDEFINED_INTERVAL = Interval(None, None)


@dataclass(frozen=True)
class AlphaResult:
    alpha: float | None  # None when undefined (fewer than 2 pairable values, or no variation)
    ci95: Interval  # bootstrap percentile 95 % CI over units; None bounds when undefined
    level: str  # "ordinal" | "nominal" | "masi" | "binary:<code>"
    n_units: int  # samples with at least 2 non-missing labels


@dataclass(frozen=True)
class KappaMatrix:
    annotators: tuple[str, ...]
    values: tuple[tuple[float | None, ...], ...]  # symmetric, diagonal 1.0; None when undefined for a pair
    weights: str  # "quadratic" | "none"


# --------------------------------------------------------------------------------------------------- distances


def nominal_distance(a: object, b: object) -> float:
    return 0.0 if a == b else 1.0


def masi_distance(a: AbstractSet, b: AbstractSet) -> float:
    """Passonneau (2006): 1 - Jaccard * M, M = 1 equal, 2/3 subset, 1/3 overlap, 0 disjoint."""
    if a == b:
        return 0.0  # also covers two empty sets, whose Jaccard index would be 0/0
    shared = len(a & b)
    if shared == 0:
        return 1.0
    monotonicity = 2 / 3 if a <= b or b <= a else 1 / 3
    return 1.0 - shared / len(a | b) * monotonicity


def masi_distance_matrix(domain: Sequence[AbstractSet]) -> np.ndarray:
    # Vectorised because a code set domain can hold hundreds of distinct sets (9 codes -> up to 511);
    # tests check it against masi_distance() pair by pair.
    universe = sorted({code for labels in domain for code in labels}, key=str)
    position = {code: k for k, code in enumerate(universe)}
    member = np.zeros((len(domain), len(universe)))
    for row, labels in enumerate(domain):
        member[row, [position[code] for code in labels]] = 1.0
    shared = member @ member.T
    size = member.sum(axis=1)
    union = size[:, None] + size[None, :] - shared
    equal = (shared == size[:, None]) & (shared == size[None, :])
    nested = (shared == np.minimum(size[:, None], size[None, :])) & ~equal
    monotonicity = np.select([equal, nested, shared > 0], [1.0, 2 / 3, 1 / 3], default=0.0)
    jaccard = np.divide(shared, union, out=np.ones_like(shared), where=union > 0)
    return 1.0 - jaccard * monotonicity


def _distance_matrix(domain: Sequence[object], distance: Callable[[object, object], float]) -> np.ndarray:
    return np.array([[distance(a, b) for b in domain] for a in domain], dtype=float).reshape(len(domain), len(domain))


def _ordinal_distances(marginals: np.ndarray) -> np.ndarray:
    """Krippendorff's ordinal metric for each row of marginals (resamples x V) -> (resamples x V x V).

    The metric depends on how often each value was used, so it must be recomputed for every resample.
    """
    n_values = marginals.shape[1]
    cumulative = np.concatenate([np.zeros((marginals.shape[0], 1)), np.cumsum(marginals, axis=1)], axis=1)
    index = np.arange(n_values)
    low = np.minimum(index[:, None], index[None, :])
    high = np.maximum(index[:, None], index[None, :])
    between = cumulative[:, high + 1] - cumulative[:, low]  # marginal mass from the lower to the higher rank
    return (between - (marginals[:, :, None] + marginals[:, None, :]) / 2) ** 2


# --------------------------------------------------------------------------------------------------- encoding


def _rectangular(labels: Sequence[Sequence[object | None]]) -> list[list[object | None]]:
    rows = [list(row) for row in labels]
    if len({len(row) for row in rows}) > 1:
        raise ValueError("every annotator must have one label (or None) per sample")
    return rows


def _encode(rows: list[list[object | None]], to_index: Callable[[object], int]) -> np.ndarray:
    n_units = len(rows[0]) if rows else 0
    codes = np.full((len(rows), n_units), MISSING, dtype=np.int64)
    for i, row in enumerate(rows):
        for j, value in enumerate(row):
            if value is not None:
                codes[i, j] = to_index(value)
    return codes


def _category_index(categories: Sequence[Hashable]) -> dict[Hashable, int]:
    index = {category: k for k, category in enumerate(categories)}
    if len(index) != len(categories) or None in index:
        raise ValueError("categories must be distinct and must not contain None (None means missing)")
    return index


def _lookup(index: dict[Hashable, int]) -> Callable[[object], int]:
    def to_index(value: object) -> int:
        try:
            return index[value]
        except KeyError:
            # An unknown code is a parsing bug upstream; silently dropping it would bias the statistic.
            raise ValueError(f"label {value!r} is not one of the categories") from None

    return to_index


def _first_seen(values: Sequence[object]) -> dict[Hashable, int]:
    # Nominal and set values need no order; first appearance keeps mixed-type values usable.
    index: dict[Hashable, int] = {}
    for value in values:
        index.setdefault(value, len(index))
    return index


def _as_set(value: object, allowed: AbstractSet | None) -> frozenset:
    # Concrete types first: the ABC check alone is slow enough to show over 30 workbooks of labels.
    if not isinstance(value, frozenset | set | AbstractSet):
        raise TypeError(f"code set labels must be sets, got {value!r}")
    if allowed is not None and not value <= allowed:
        raise ValueError(f"codes {sorted(map(str, value - allowed))} are not among the categories")
    return frozenset(value)


def _encode_sets(
    rows: list[list[object | None]], categories: Sequence[str] | None
) -> tuple[np.ndarray, list[frozenset]]:
    """Index every label into the distinct sets observed; the binary levels derive their presence codes from it."""
    allowed = frozenset(categories) if categories is not None else None
    sets = [[None if value is None else _as_set(value, allowed) for value in row] for row in rows]
    index = _first_seen([value for row in sets for value in row if value is not None])
    return _encode(sets, index.__getitem__), list(index)


def _presence(set_codes: np.ndarray, domain: list[frozenset], code: str) -> np.ndarray:
    """0/1 presence of one code per label; a missing set stays missing rather than meaning 'absent'."""
    if not domain:
        return set_codes.copy()
    has_code = np.array([code in labels for labels in domain], dtype=np.int64)
    return np.where(set_codes == MISSING, MISSING, has_code[set_codes])


def _encode_level(
    rows: list[list[object | None]], level: str, categories: Sequence[str] | None
) -> tuple[np.ndarray, list[object]]:
    """(annotators x units) value indices with MISSING for None, and the value domain the indices refer to."""
    if level == ORDINAL and categories is None:
        raise ValueError("ordinal alpha needs the ordered categories")
    if level in (NOMINAL, ORDINAL):
        values = [value for row in rows for value in row if value is not None]
        index = _category_index(categories) if categories is not None else _first_seen(values)
        return _encode(rows, _lookup(index)), list(index)
    set_codes, domain = _encode_sets(rows, categories)
    if level == MASI:
        return set_codes, domain
    return _presence(set_codes, domain, level.removeprefix(BINARY_PREFIX)), [False, True]


def _check_level(level: str) -> None:
    if level not in (NOMINAL, ORDINAL, MASI) and not (level.startswith(BINARY_PREFIX) and len(level) > len(BINARY_PREFIX)):
        raise ValueError(f"unknown level {level!r}")


# --------------------------------------------------------------------------------------------------- alpha engine


def _value_counts(codes: np.ndarray, n_values: int) -> np.ndarray:
    """(units x values): how many annotators gave each value to each unit."""
    n_units = codes.shape[1]
    unit = np.broadcast_to(np.arange(n_units), codes.shape)
    present = codes != MISSING
    flat = unit[present] * n_values + codes[present]
    return np.bincount(flat, minlength=n_units * n_values).reshape(n_units, n_values).astype(float)


def _pairable(counts: np.ndarray) -> np.ndarray:
    # A unit with a single value has no pair, so it contributes nothing to any coincidence.
    return counts[counts.sum(axis=1) >= 2]


def _ratio(observed: np.ndarray, expected: np.ndarray) -> np.ndarray:
    alphas = np.full(observed.shape, np.nan)
    defined = expected > 0  # no expected disagreement = no variation in the values: alpha is undefined
    alphas[defined] = 1.0 - observed[defined] / expected[defined]
    return alphas


def _fixed_metric_alphas(counts: np.ndarray, weights: np.ndarray, distance: np.ndarray) -> np.ndarray:
    """Alpha for each row of unit weights, for a distance that does not depend on the data.

    With a fixed distance, a unit's observed disagreement is one number, and the marginals are the weighted value
    counts (a unit's coincidence row sums equal its value counts), so no units x V x V tensor is needed: that keeps
    MASI with hundreds of distinct sets cheap.
    """
    self_distance = np.diag(distance)
    per_unit = (((counts @ distance) * counts).sum(axis=1) - counts @ self_distance) / (counts.sum(axis=1) - 1)
    # One product, because streaming the (resamples x units) weights through memory is the dominant cost.
    weighted = weights @ np.column_stack([counts, per_unit])
    marginals, observed = weighted[:, :-1], weighted[:, -1]
    n_values = marginals.sum(axis=1)
    expected = (((marginals @ distance) * marginals).sum(axis=1) - marginals @ self_distance) / (n_values - 1)
    return _ratio(observed, expected)


def _unit_coincidences(counts: np.ndarray) -> np.ndarray:
    """(units x V*V) per-unit coincidence matrices: (n n^T - diag n) / (m_u - 1)."""
    n_values = counts.shape[1]
    pairs = counts[:, :, None] * counts[:, None, :]
    pairs[:, np.arange(n_values), np.arange(n_values)] -= counts
    return (pairs / (counts.sum(axis=1) - 1)[:, None, None]).reshape(len(counts), -1)


def _ordinal_alphas(counts: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Alpha for each row of unit weights with the ordinal metric, which needs the full coincidence matrices."""
    n_values = counts.shape[1]
    coincidences = (weights @ _unit_coincidences(counts)).reshape(-1, n_values, n_values)
    marginals = coincidences.sum(axis=1)
    distance = _ordinal_distances(marginals)
    observed = (coincidences * distance).sum(axis=(1, 2))
    # The ordinal distance of a value to itself is 0, so the diagonal correction of the expected matrix drops out.
    expected = ((marginals[:, :, None] * marginals[:, None, :]) * distance).sum(axis=(1, 2))
    return _ratio(observed, expected / (marginals.sum(axis=1) - 1))


AlphaEngine = Callable[[np.ndarray, np.ndarray], np.ndarray]  # (pairable counts, weights) -> alphas


def _engine(level: str, domain: list[object]) -> AlphaEngine:
    if level == ORDINAL:
        return _ordinal_alphas
    distance = masi_distance_matrix(domain) if level == MASI else _distance_matrix(domain, nominal_distance)
    return lambda counts, weights: _fixed_metric_alphas(counts, weights, distance)


def _single(counts: np.ndarray, engine: AlphaEngine) -> float | None:
    if len(counts) == 0:
        return None
    value = float(engine(counts, np.ones((1, len(counts))))[0])
    return value if np.isfinite(value) else None


def alpha_with_distance(
    labels: Sequence[Sequence[object | None]], distance: Callable[[object, object], float]
) -> float | None:
    """Krippendorff's alpha for any distance over the observed values (this module's own implementation)."""
    rows = _rectangular(labels)
    index = _first_seen([value for row in rows for value in row if value is not None])
    counts = _pairable(_value_counts(_encode(rows, index.__getitem__), len(index)))
    matrix = _distance_matrix(list(index), distance)
    return _single(counts, lambda c, w: _fixed_metric_alphas(c, w, matrix))


def _package_alpha(codes: np.ndarray, n_values: int, level: str) -> float:
    # The package is the reference for nominal and ordinal, so the exported point estimate is exactly its value.
    data = np.where(codes == MISSING, np.nan, codes.astype(float))
    measure = ORDINAL if level == ORDINAL else NOMINAL
    return float(krippendorff.alpha(reliability_data=data, value_domain=np.arange(n_values),
                                    level_of_measurement=measure))


# --------------------------------------------------------------------------------------------------- bootstrap


@lru_cache(maxsize=2)
def resample_weights(n_units: int, bootstrap: int, seed: int) -> np.ndarray:
    """(bootstrap x units): how often each unit is drawn in each resample with replacement.

    Cached (read-only) because the per-code binary alphas of one domain resample the same units with the same seed.
    """
    drawn = np.random.default_rng(seed).integers(0, n_units, size=(bootstrap, n_units))
    flat = (drawn + np.arange(bootstrap)[:, None] * n_units).ravel()
    weights = np.bincount(flat, minlength=bootstrap * n_units).reshape(bootstrap, n_units).astype(float)
    weights.flags.writeable = False
    return weights


def _bootstrap_interval(counts: np.ndarray, engine: AlphaEngine, bootstrap: int, seed: int) -> Interval:
    # Only pairable units are resampled: the others contribute nothing and would merely shrink the effective sample.
    if bootstrap <= 0 or len(counts) == 0:
        return UNDEFINED_INTERVAL
    alphas = engine(counts, resample_weights(len(counts), bootstrap, seed))
    defined = alphas[np.isfinite(alphas)]
    if defined.size == 0:
        return UNDEFINED_INTERVAL
    low, high = np.percentile(defined, [2.5, 97.5])
    return Interval(float(low), float(high))


# --------------------------------------------------------------------------------------------------- public API


def _alpha_result(codes: np.ndarray, domain: list[object], level: str, bootstrap: int, seed: int) -> AlphaResult:
    counts = _pairable(_value_counts(codes, len(domain)))
    engine = _engine(level, domain)
    point = _single(counts, engine)
    if point is not None and level != MASI:
        point = _package_alpha(codes, len(domain), level)
    interval = _bootstrap_interval(counts, engine, bootstrap, seed) if point is not None else UNDEFINED_INTERVAL
    return AlphaResult(alpha=point, ci95=interval, level=level, n_units=len(counts))


def krippendorff_alpha(
    labels: Sequence[Sequence[object | None]],
    *,
    level: str,
    categories: Sequence[str] | None = None,
    bootstrap: int = 1000,
    seed: int = 0,
) -> AlphaResult:
    """Alpha with a bootstrap CI. Levels: nominal/ordinal (codes), masi (sets), binary:<code> (presence in sets).

    For the set levels, `categories` (optional) lists the allowed codes, so that a stray code raises.
    """
    _check_level(level)
    codes, domain = _encode_level(_rectangular(labels), level, categories)
    return _alpha_result(codes, domain, level, bootstrap, seed)


@dataclass(frozen=True)
class FleissResult:
    kappa: float | None  # None when undefined (no pairable unit, or every label the same)
    ci95: Interval  # bootstrap percentile 95 % CI over units
    level: str  # "nominal" (ordinal codes count as categories) | "binary:<code>"
    n_units: int  # samples with at least 2 labels


def _fleiss_kappas(counts: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Fleiss' kappa for each row of unit weights; a unit with m labels agrees in (sum n_j^2 - m) / (m (m - 1)) of its
    pairs. With the same number of labels per unit this is Fleiss (1971) exactly; with fewer labels on some units
    (malformed answers) each unit still weighs one, and the category shares count every label given."""
    labels = counts.sum(axis=1)
    agreement = ((counts**2).sum(axis=1) - labels) / (labels * (labels - 1))
    observed = (weights @ agreement) / weights.sum(axis=1)
    shares = (weights @ counts) / (weights @ labels)[:, None]
    chance = (shares**2).sum(axis=1)
    kappas = np.full(observed.shape, np.nan)
    defined = chance < 1  # all labels alike: no disagreement was possible, kappa is undefined
    kappas[defined] = (observed[defined] - chance[defined]) / (1 - chance[defined])
    return kappas


def fleiss_kappa(
    labels: Sequence[Sequence[object | None]],
    *,
    level: str = NOMINAL,
    categories: Sequence[str] | None = None,
    bootstrap: int = 1000,
    seed: int = 0,
) -> FleissResult:
    """Fleiss' kappa over every annotator at once, with a bootstrap CI over units (the resamples alpha uses).
    Levels: nominal (ordinal codes are treated as categories) or binary:<code> (presence of a code in sets)."""
    if level != NOMINAL and not level.startswith(BINARY_PREFIX):
        raise ValueError(f"Fleiss' kappa needs categories: level {level!r} is not nominal or binary:<code>")
    _check_level(level)
    codes, domain = _encode_level(_rectangular(labels), level, categories)
    counts = _pairable(_value_counts(codes, len(domain)))
    point = _single(counts, _fleiss_kappas)
    interval = (_bootstrap_interval(counts, _fleiss_kappas, bootstrap, seed) if point is not None
                else UNDEFINED_INTERVAL)
    return FleissResult(kappa=point, ci95=interval, level=level, n_units=len(counts))


def _binary_alphas(
    sets: Sequence[Sequence[frozenset | None]],
    codes: Sequence[str],
    *,
    categories: Sequence[str] | None = None,
    bootstrap: int = 1000,
    seed: int = 0,
) -> dict[str, AlphaResult]:
    # The sets are validated and indexed once; each code then only maps the distinct sets to 0/1.
    set_codes, domain = _encode_sets(_rectangular(sets), categories)
    return {
        code: _alpha_result(_presence(set_codes, domain, code), [False, True], f"{BINARY_PREFIX}{code}", bootstrap, seed)
        for code in codes
    }


def per_code_binary_alpha(sets: Sequence[Sequence[frozenset | None]], codes: Sequence[str], **kw) -> dict[str, AlphaResult]:
    """Nominal alpha on the presence of each code (missing stays missing); kw: categories, bootstrap, seed."""
    return _binary_alphas(sets, codes, **kw)


def _cohen_kappa(first: np.ndarray, second: np.ndarray, disagreement: np.ndarray) -> float | None:
    both = (first != MISSING) & (second != MISSING)
    n_samples = int(both.sum())
    if n_samples == 0:
        return None
    n_values = len(disagreement)
    confusion = np.bincount(first[both] * n_values + second[both], minlength=n_values * n_values)
    confusion = confusion.reshape(n_values, n_values) / n_samples
    chance = np.outer(confusion.sum(axis=1), confusion.sum(axis=0))
    expected = float((chance * disagreement).sum())
    if expected <= 0:
        return None  # both raters used one and the same category throughout: chance explains everything
    return 1.0 - float((confusion * disagreement).sum()) / expected


def _disagreement(n_values: int, weighted: bool) -> np.ndarray:
    # Kappa as 1 - observed/expected disagreement; the (V-1)^2 normalisation of quadratic weights cancels out.
    rank = np.arange(n_values)
    disagreement = (rank[:, None] - rank[None, :]) ** 2 if weighted else (rank[:, None] != rank[None, :])
    return disagreement.astype(float)


def pairwise_kappa(
    labels: Sequence[Sequence[object | None]], annotators: Sequence[str], *, categories: Sequence[str], weighted: bool
) -> KappaMatrix:
    """Cohen's kappa for every pair over the samples both labelled; quadratic weights follow the category order."""
    rows = _rectangular(labels)
    if len(rows) != len(annotators):
        raise ValueError("one row of labels per annotator is required")
    codes = _encode(rows, _lookup(_category_index(categories)))
    disagreement = _disagreement(len(categories), weighted)
    values: list[list[float | None]] = [[1.0] * len(rows) for _ in rows]
    for i, j in combinations(range(len(rows)), 2):
        # Computed once per pair so the matrix is exactly symmetric, not just up to rounding.
        values[i][j] = values[j][i] = _cohen_kappa(codes[i], codes[j], disagreement)
    return KappaMatrix(annotators=tuple(annotators), values=tuple(map(tuple, values)),
                       weights="quadratic" if weighted else "none")


def majority_label(values: Sequence[object | None]) -> tuple[object | None, bool]:
    """(most common non-missing label, or None on a tie or no labels; True when >= 2 labels all agree)."""
    counts = Counter(value for value in values if value is not None)
    if not counts:
        return None, False
    ranked = counts.most_common(2)
    unanimous = len(counts) == 1 and ranked[0][1] >= 2
    if len(ranked) == 2 and ranked[0][1] == ranked[1][1]:
        return None, False
    return ranked[0][0], unanimous


@dataclass(frozen=True)
class ReferenceAgreement:
    n: int  # samples with both a label and a reference label
    accuracy: float | None  # share of exact matches; None when n is 0
    kappa: float | None  # Cohen's kappa against the reference; None without categories, or undefined


def agreement_with_reference(
    given: Sequence[object | None], reference: Sequence[object | None], *, categories: Sequence[str] | None = None,
    weighted: bool = False,
) -> ReferenceAgreement:
    """One annotator against reference labels (a clinician's adjudication), over the samples both have: the exact
    match rate, and Cohen's kappa when ``categories`` are given (quadratic weights in their order if ``weighted``)."""
    pairs = [(label, truth) for label, truth in zip(given, reference, strict=True)
             if label is not None and truth is not None]
    if not pairs:
        return ReferenceAgreement(0, None, None)
    accuracy = sum(label == truth for label, truth in pairs) / len(pairs)
    kappa = None
    if categories is not None:
        codes = _encode([[label for label, _ in pairs], [truth for _, truth in pairs]],
                        _lookup(_category_index(categories)))
        kappa = _cohen_kappa(codes[0], codes[1], _disagreement(len(categories), weighted))
    return ReferenceAgreement(len(pairs), accuracy, kappa)
