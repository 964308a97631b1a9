"""What a row must be to become a sample, whatever format it came from: an id that is text or a whole number, a text
that is text, both free of control characters and within their limits."""

from __future__ import annotations

import re
from collections.abc import Callable

from django.conf import settings

from workers_app.models import Sample

from .rows import Problem, Row, describe

# Tab, line feed and carriage return are ordinary in posts; any other control character, or half a surrogate pair
# (which no UTF-8 database can store), means a damaged or binary file.
UNSAFE_CHARACTER = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff]")
# The largest whole numbers a float holds exactly; past them a numeric id has lost digits already.
EXACT_FLOAT_LIMIT = 2**53


class ValueRefused(Exception):
    """A value of a kind that cannot be an id or a text."""


def id_of(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value.strip()
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    if isinstance(value, float) and value.is_integer():
        if abs(value) > EXACT_FLOAT_LIMIT:
            raise ValueRefused(f"{describe(value)} is too large to be an exact whole number: write such ids as text")
        return str(int(value))
    if isinstance(value, float):
        raise ValueRefused(f"{describe(value)} is not a whole number: an id must be text or a whole number")
    raise ValueRefused(f"{describe(value)} cannot be an id: an id must be text or a whole number")


def text_of(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    raise ValueRefused(f"{describe(value)} where a text must be")


def unsafe_character(text: str) -> str | None:
    found = UNSAFE_CHARACTER.search(text)
    if found is None:
        return None
    code, at = ord(found.group()), found.start() + 1
    if 0xD800 <= code <= 0xDFFF:
        return f"half a surrogate pair (U+{code:04X}) at character {at}: not valid Unicode"
    return (f"control character U+{code:04X} at character {at}: only tab, line feed and carriage return may be in "
            "a text; the file may be damaged or binary")


def _id_problem(external_id: str) -> str | None:
    if not external_id:
        return "empty id"
    limit = Sample._meta.get_field("external_id").max_length
    if len(external_id) > limit:
        return f"id is {len(external_id):,} characters; the limit is {limit}"
    return unsafe_character(external_id)


def _text_problem(text: str) -> str | None:
    if not text.strip():
        return "empty text"
    if len(text) > settings.MAX_SAMPLE_CHARS:
        return f"text is {len(text):,} characters; the limit is {settings.MAX_SAMPLE_CHARS:,}"
    return unsafe_character(text)


def _checked(value: object, convert: Callable[[object], str], judge: Callable[[str], str | None]) -> tuple[str, str]:
    """The value as a string and what is wrong with it: ("", reason) when something is, (string, "") when not."""
    try:
        text = convert(value)
    except ValueRefused as exc:
        return "", str(exc)
    reason = judge(text)
    return ("", reason) if reason else (text, "")


def checked_id(value: object) -> tuple[str, str]:
    """A sample id as a corpus import reads it, and what is wrong with it ("" when nothing): other files that
    name samples (reference labels) must read ids exactly as the corpus did."""
    return _checked(value, id_of, _id_problem)


def clean_row(row: Row, file: str) -> tuple[str, str, list[Problem]]:
    """The id and the text of a row as strings, and the problems of each."""
    external_id, id_problem = checked_id(row.values["id"])
    text, text_problem = _checked(row.values["text"], text_of, _text_problem)
    problems = [row.problem(file, field, reason) for field, reason in (("id", id_problem), ("text", text_problem))
                if reason]
    return external_id, text, problems


def cut_cell(row: Row, text: str, file: str, *, allowed: bool) -> Problem | None:
    """A text exactly as long as its cell can hold was most likely cut there when the file was saved."""
    if row.cell_limit is None or len(text) != row.cell_limit:
        return None
    if allowed:
        return row.problem(file, "text", f"exactly {row.cell_limit:,} characters, the most an xlsx cell holds: "
                           "probably cut short when the file was saved; imported as it is")
    return row.problem(file, "text", f"exactly {row.cell_limit:,} characters, the most an xlsx cell holds: Excel and "
                       "openpyxl cut longer texts there without a word, so this post is probably cut short. Export "
                       "the file as CSV or JSONL, which keep long texts, or import it as it is with "
                       "--allow-cut-cells (in the admin: tick 'allow cut cells')")
