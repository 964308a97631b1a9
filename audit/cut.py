"""Cutting what the audit log stores from a visitor: long text keeps its start and says it was cut."""

from __future__ import annotations

MARK = "…"


def cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:limit] + MARK


def cut_values(value: object, limit: int) -> object:
    """``value`` with every string longer than ``limit`` cut, in lists and objects too."""
    if isinstance(value, str):
        return cut(value, limit)
    if isinstance(value, dict):
        return {key: cut_values(item, limit) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [cut_values(item, limit) for item in value]
    return value
