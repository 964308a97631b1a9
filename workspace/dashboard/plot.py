"""Line charts drawn on the server as SVG: a time axis, a value axis with its unit, and each time bucket a hover
target whose title gives the bucket's time and values (no script, no external library)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

WIDTH, HEIGHT = 560, 200
LEFT, RIGHT, TOP, BOTTOM = 52, 12, 22, 26
X_TICKS = 6


@dataclass(frozen=True)
class Line:
    name: str
    values: Sequence[float | None]  # one per bucket; None where nothing was measured


@dataclass(frozen=True)
class Hover:
    x: float
    width: float
    title: str


@dataclass(frozen=True)
class Tick:
    at: float  # position along its axis, in SVG units
    label: str


@dataclass
class Plot:
    lines: list[tuple[int, list[str]]]  # (line index, its polylines: a gap in the data breaks the line)
    x_ticks: list[Tick]
    y_ticks: list[Tick]
    hovers: list[Hover]
    width: int = WIDTH
    height: int = HEIGHT
    left: int = LEFT
    right_edge: int = WIDTH - RIGHT
    top: int = TOP
    bottom_edge: int = HEIGHT - BOTTOM

    @property
    def inner_height(self) -> int:
        return self.bottom_edge - self.top


def nice_ceiling(value: float) -> float:
    """The smallest of 1, 2, 2.5, 5 x 10^k at or above ``value`` (at least 1)."""
    if value <= 1:
        return 1.0
    power = 10 ** math.floor(math.log10(value))
    return next(step * power for step in (1, 2, 2.5, 5, 10) if step * power >= value)


def number(value: float) -> str:
    if value >= 100 or value == int(value):
        return f"{value:,.0f}"
    return f"{value:,.2f}" if value < 1 else f"{value:,.1f}"


def time_label(moment: datetime, span: timedelta) -> str:
    return moment.strftime("%a %H:%M" if span > timedelta(days=1) else "%H:%M")


def draw(starts: Sequence[datetime], bucket: timedelta, lines: Sequence[Line], unit: str) -> Plot | None:
    """``starts`` are the buckets' start times, oldest first; None when there is nothing to draw."""
    if not starts or not any(v is not None for line in lines for v in line.values):
        return None
    first, last = starts[0], starts[-1] + bucket
    span = last - first
    inner_w, inner_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    top = nice_ceiling(max(v for line in lines for v in line.values if v is not None))

    def x(moment: datetime) -> float:
        return LEFT + (moment - first) / span * inner_w

    def y(value: float) -> float:
        return TOP + inner_h - value / top * inner_h

    drawn = []
    for index, line in enumerate(lines):
        segments, current, previous = [], [], None
        for start, value in zip(starts, line.values, strict=True):
            if value is None or (previous is not None and start - previous > bucket):
                segments.append(current)
                current = []
            if value is not None:
                current.append(f"{x(start + bucket / 2):.1f},{y(value):.1f}")
                previous = start
        segments.append(current)
        # A lone point is drawn as a line of zero length (round caps make it a dot).
        drawn.append((index, [" ".join(s if len(s) > 1 else s * 2) for s in segments if s]))
    step = max(1, len(starts) // X_TICKS)
    x_ticks = [Tick(round(x(start), 1), time_label(start, span)) for start in starts[::step]]
    y_ticks = [Tick(round(y(top * share), 1), f"{number(top * share)}") for share in (0, 0.5, 1)]
    hovers = []
    for position, start in enumerate(starts):
        said = [f"{line.name} {number(line.values[position])}" if line.name else number(line.values[position])
                for line in lines if line.values[position] is not None]
        title = f"{time_label(start, span)}–{(start + bucket).strftime('%H:%M')}: " + (
            ", ".join(said) + f" {unit}" if said else "no data")
        hovers.append(Hover(round(x(start), 1), round(bucket / span * inner_w, 1), title))
    return Plot(drawn, x_ticks, y_ticks, hovers)
