"""What the quality page shows, shaped for its template: intervals as bars, confusion matrices as heat tables."""

from __future__ import annotations

from dataclasses import dataclass

from stats.quality import Estimate
from workers_app.references.quality import DomainQuality, Row

HEAT_LEVELS = 5


@dataclass(frozen=True)
class Shown:
    """An estimate as text and as a bar: ``low`` and ``width`` in percent of the scale's span."""

    value: float | None
    low: float | None
    high: float | None
    bar_left: float = 0.0
    bar_width: float = 0.0
    mark: float = 0.0

    @property
    def defined(self) -> bool:
        return self.value is not None


def shown(estimate: Estimate, *, lowest: float = 0.0) -> Shown:
    """``lowest``: the scale's bottom (0 for shares, -1 for kappa); the top is 1."""
    if estimate.value is None:
        return Shown(None, None, None)
    span = 1.0 - lowest

    def place(x: float) -> float:
        return round(100 * (min(max(x, lowest), 1.0) - lowest) / span, 1)

    low, high = estimate.ci95.low, estimate.ci95.high
    if low is None:
        return Shown(estimate.value, None, None, mark=place(estimate.value))
    return Shown(estimate.value, low, high, place(low), max(place(high) - place(low), 0.5), place(estimate.value))


@dataclass(frozen=True)
class Cell:
    count: int
    heat: int  # 0..HEAT_LEVELS: the count's share of its row (the reference class)
    diagonal: bool


@dataclass
class RowView:
    row: Row
    accuracy: Shown
    macro_f1: Shown
    kappa: Shown
    malformed: Shown
    refused: Shown
    confusion: list[tuple[str, list[Cell]]]


def _confusion(row: Row) -> list[tuple[str, list[Cell]]]:
    result = row.result
    found = []
    for index, (label, counts) in enumerate(zip(result.labels, result.confusion, strict=True)):
        total = sum(counts)
        found.append((label, [Cell(count, round(HEAT_LEVELS * count / total) if total else 0, index == column)
                              for column, count in enumerate(counts)]))
    return found


def row_views(domain: DomainQuality) -> list[RowView]:
    return [RowView(row, shown(row.result.accuracy), shown(row.result.macro_f1), shown(row.result.kappa, lowest=-1.0),
                    shown(row.malformed), shown(row.refused), _confusion(row)) for row in domain.rows]
