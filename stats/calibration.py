"""How far an annotator's confidence is from how often it is right: a reliability table and the expected calibration
error (ECE; Naeini, Cooper & Hauskrecht 2015; Guo et al. 2017).

The confidences fall into ``bins`` equal-width bins over [0, 1] (bin b holds b/bins <= c < (b+1)/bins; a
confidence of exactly 1 joins the last bin). Each bin reports how many comparisons it holds, their mean confidence
and the share of them that were right; the ECE is the mean over bins of |accuracy - mean confidence| weighted by the
bin's share of all comparisons. 0 is perfectly calibrated; an annotator that says 0.9 and is right half the time
adds 0.4 for each such comparison.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

BINS = 10


@dataclass(frozen=True)
class ReliabilityBin:
    low: float
    high: float
    count: int
    mean_confidence: float | None  # None: an empty bin
    accuracy: float | None


@dataclass(frozen=True)
class Calibration:
    n: int
    bins: tuple[ReliabilityBin, ...]
    ece: float | None  # None without any comparison


def calibration(confidences: Sequence[float], correct: Sequence[bool], *, bins: int = BINS) -> Calibration:
    """The reliability table and ECE of ``confidences`` (each in [0, 1]) against whether each label was right."""
    confidence = np.asarray(confidences, dtype=float)
    right = np.asarray(correct, dtype=bool)
    if confidence.shape != right.shape or confidence.ndim != 1:
        raise ValueError("one confidence per comparison, and one correctness")
    if not np.all((confidence >= 0) & (confidence <= 1)):
        raise ValueError("confidences must lie in [0, 1]")
    index = np.minimum((confidence * bins).astype(int), bins - 1)
    counts = np.bincount(index, minlength=bins)
    sums = np.bincount(index, weights=confidence, minlength=bins)
    hits = np.bincount(index, weights=right, minlength=bins)
    table = []
    for b in range(bins):
        filled = counts[b] > 0
        table.append(ReliabilityBin(b / bins, (b + 1) / bins, int(counts[b]),
                                    float(sums[b] / counts[b]) if filled else None,
                                    float(hits[b] / counts[b]) if filled else None))
    n = len(confidence)
    ece = float(np.abs(hits - sums).sum() / n) if n else None  # sum_b n_b/n * |acc_b - conf_b|
    return Calibration(n, tuple(table), ece)
