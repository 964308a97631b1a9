"""How a long operation tells whoever follows it of its steps (the API's and the workspace's jobs)."""

from __future__ import annotations

from collections.abc import Callable

# progress(done, total, stage): ``done`` of ``total`` steps, ``total`` 0 while it is not known yet.
Progress = Callable[[int, int, str], None]


def no_progress(done: int, total: int, stage: str) -> None:
    """Nobody follows."""
