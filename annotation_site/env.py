"""Strict readers for settings taken from environment variables.

A bad value never raises while settings load: it is recorded in ``PROBLEMS`` and the
documented default is used, so that ``manage.py check`` can report every mistake at once
with a clear id instead of a traceback on the first one.
"""

from __future__ import annotations

import os
from dataclasses import dataclass


@dataclass(frozen=True)
class Problem:
    variable: str
    value: str
    reason: str


PROBLEMS: list[Problem] = []

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def _raw(name: str) -> str | None:
    value = os.environ.get(name)
    return None if value is None else value.strip()


def env_str(name: str, default: str) -> str:
    value = _raw(name)
    return default if value in (None, "") else value


def env_bool(name: str, default: bool) -> bool:
    value = _raw(name)
    if value is None:
        return default
    if value.lower() in _TRUE:
        return True
    if value.lower() in _FALSE:
        return False
    PROBLEMS.append(Problem(name, value, "expected one of 1/0, true/false, yes/no, on/off"))
    return default


def env_int(name: str, default: int, *, minimum: int | None = None, maximum: int | None = None) -> int:
    value = _raw(name)
    if value in (None, ""):
        return default
    try:
        number = int(value)
    except ValueError:
        PROBLEMS.append(Problem(name, value, "expected a whole number"))
        return default
    if (minimum is not None and number < minimum) or (maximum is not None and number > maximum):
        PROBLEMS.append(Problem(name, value, f"expected a number from {minimum} to {maximum}"))
        return default
    return number


def env_list(name: str, default: list[str]) -> list[str]:
    value = _raw(name)
    if value in (None, ""):
        return default
    return [item.strip() for item in value.split(",") if item.strip()]
