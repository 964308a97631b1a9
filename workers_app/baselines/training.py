"""Learning one domain's labels from text: TF-IDF over word uni- and bigrams, then a logistic regression, and its
k-fold cross-validated quality (stats.quality: accuracy, macro-F1, kappa, 95 % bootstrap intervals).

The settings are fixed defaults chosen before any data was seen (sublinear term frequency, classes weighted by
their inverse frequency so that rare, severe levels count), never fitted to a reference set: a baseline that is
tuned to the labels it is scored on would report its own tuning.

A one-code domain learns its codes; a code-set domain learns each distinct set as one class (what the model can
answer is a set some rater gave), so every answer is a set that the parser accepts.
"""

from __future__ import annotations

import warnings
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from stats.quality import SET, QualityResult, quality

if TYPE_CHECKING:
    from sklearn.pipeline import Pipeline

SEED = 0
MIN_ITEMS = 10
MAX_FEATURES = 50_000
SEPARATOR = ", "  # between the codes of a set, as an answer's marker lists them


@dataclass(frozen=True)
class DomainData:
    """One domain's labelled items: text, the class each is learned as, and every rater's label (to score
    against)."""

    slug: str
    kind: str  # stats.quality kind: ordinal, nominal or set
    codes: tuple[str, ...]
    texts: list[str]
    targets: list[str]  # the class of each item: a code, or a set's codes joined by SEPARATOR
    reference: list[list[object]]  # per item, each rater's label (a code, or a frozenset of codes)


def class_of(codes: Sequence[str], kind: str, order: Sequence[str]) -> str:
    """The class key of a label: its code, or its codes in the domain's order."""
    if kind != SET:
        return codes[0]
    position = {code: k for k, code in enumerate(order)}
    return SEPARATOR.join(sorted(codes, key=lambda code: position.get(code, len(position))))


def value_of(key: str, kind: str) -> object:
    """What stats.quality compares for a class key."""
    return frozenset(key.split(SEPARATOR)) if kind == SET else key


def learned_label(raters: Sequence[Sequence[str]], kind: str, order: Sequence[str]) -> str:
    """The class an item is learned as: its raters' most common label; a tie goes to the label first in the
    domain's code order (stable, and no guess about which rater is right)."""
    counts = Counter(class_of(codes, kind, order) for codes in raters)
    top = max(counts.values())
    rank = {code: k for k, code in enumerate(order)}
    return min((key for key, n in counts.items() if n == top),
               key=lambda key: [rank.get(code, len(rank)) for code in key.split(SEPARATOR)])


def too_few(targets: Sequence[str]) -> str | None:
    """Why these labels cannot be learned and cross-validated, or None. Two labels given to at least two items
    each keep two classes in every training fold."""
    if len(targets) < MIN_ITEMS:
        return f"{len(targets)} labelled item(s), fewer than {MIN_ITEMS}"
    repeated = [key for key, n in Counter(targets).items() if n >= 2]
    if len(repeated) < 2:
        return "fewer than two labels are given to two or more items each: nothing to tell apart"
    return None


def classifier() -> Pipeline:
    # scikit-learn is imported here, not with the module: the module comes with every process's start-up (the
    # workers' backends), and the import costs over a second that only training pays for.
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    return make_pipeline(
        TfidfVectorizer(sublinear_tf=True, ngram_range=(1, 2), max_features=MAX_FEATURES, strip_accents="unicode",
                        dtype=np.float32),
        LogisticRegression(max_iter=2000, class_weight="balanced", random_state=SEED))


def fit(texts: Sequence[str], targets: Sequence[str]) -> Pipeline:
    model = classifier()
    model.fit(list(texts), list(targets))
    return model


def cross_validated(data: DomainData, folds: int, *, bootstrap: int = 1000,
                    progress: Callable[[int], None] | None = None) -> QualityResult:
    """Each item predicted by the model trained on the other folds (stratified, seeded), then scored against all of
    its raters' labels."""
    from sklearn.model_selection import StratifiedKFold

    predicted: list[object | None] = [None] * len(data.texts)
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=SEED)
    texts = np.array(data.texts, dtype=object)
    with warnings.catch_warnings():
        # A class with fewer items than folds cannot be in every fold; it is still learned where it is.
        warnings.filterwarnings("ignore", message="The least populated class", category=UserWarning)
        splits = list(splitter.split(texts, data.targets))
    targets = np.array(data.targets, dtype=object)
    for train, test in splits:
        model = fit(texts[train], targets[train])
        for index, key in zip(test, model.predict(list(texts[test])), strict=True):
            predicted[index] = value_of(key, data.kind)
        if progress:
            progress(1)
    return quality(predicted, data.reference, kind=data.kind, categories=data.codes, bootstrap=bootstrap)


def predict(model: Pipeline, text: str) -> tuple[str, float]:
    """The most probable class for ``text`` and its probability."""
    probabilities = model.predict_proba([text])[0]
    best = int(np.argmax(probabilities))
    return str(model.classes_[best]), float(probabilities[best])
