"""Strict readers for settings taken from environment variables.

A bad value never raises while settings load: it is recorded in ``PROBLEMS`` and the
documented default is used, so that ``manage.py check`` can report every mistake at once
with a clear id instead of a traceback on the first one.

Every reader also records the variable, its default, the values it takes and what it means (``doc=``) in
``DOCUMENTED``, from which ``manage.py reference_docs`` writes docs/reference/settings.md: the reference is the code,
so it cannot drift. A variable read with ``os.environ`` outside settings is recorded with ``document_env`` beside
its reader.
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


@dataclass(frozen=True)
class Documented:
    name: str
    default: str  # as the reference shows it
    values: str  # what the reader accepts
    doc: str


DOCUMENTED: dict[str, Documented] = {}

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def _shown(default: object) -> str:
    if isinstance(default, bool):
        return "true" if default else "false"
    if isinstance(default, list):
        return ",".join(default) or "unset"
    return str(default) if default != "" else "unset"


def document_env(name: str, default: object, *, doc: str, values: str = "text",
                 shown_default: str | None = None) -> None:
    """Record a variable for the settings reference. `shown_default` replaces a default that depends on the machine
    (a path, the host name) or on another variable, so that the page reads the same wherever it is made."""
    shown = shown_default if shown_default is not None else _shown(default)
    DOCUMENTED[name] = Documented(name, shown, values, doc)


def _bounds(minimum: int | None, maximum: int | None) -> str:
    if minimum is not None and maximum is not None:
        return f"whole number, {minimum} to {maximum}"
    if minimum is not None:
        return f"whole number, at least {minimum}"
    return "whole number"


def _raw(name: str) -> str | None:
    value = os.environ.get(name)
    return None if value is None else value.strip()


def env_str(name: str, default: str, *, doc: str = "", shown_default: str | None = None) -> str:
    document_env(name, default, doc=doc, shown_default=shown_default)
    value = _raw(name)
    return default if value in (None, "") else value


def env_bool(name: str, default: bool, *, doc: str = "") -> bool:
    document_env(name, default, doc=doc, values="1/0, true/false, yes/no, on/off")
    value = _raw(name)
    if value is None:
        return default
    if value.lower() in _TRUE:
        return True
    if value.lower() in _FALSE:
        return False
    PROBLEMS.append(Problem(name, value, "expected one of 1/0, true/false, yes/no, on/off"))
    return default


def env_int(name: str, default: int, *, minimum: int | None = None, maximum: int | None = None,
            doc: str = "") -> int:
    document_env(name, default, doc=doc, values=_bounds(minimum, maximum))
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


def env_list(name: str, default: list[str], *, doc: str = "", shown_default: str | None = None) -> list[str]:
    document_env(name, default, doc=doc, values="comma separated", shown_default=shown_default)
    value = _raw(name)
    if value in (None, ""):
        return default
    return [item.strip() for item in value.split(",") if item.strip()]
