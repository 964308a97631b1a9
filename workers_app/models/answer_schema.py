"""The JSON schema of a domain's answer, for servers that constrain decoding (structured outputs).

Derived from the domain's kind, codes and parse rules only, so it changes exactly when they do (the domain's
``schema_version`` counts those changes). The root is an object with one key: OpenAI's strict mode takes nothing
else at the root, and a key gives the model a word to start with.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

ANSWER_KEY = "answer"
# Defaults of the string-list rules, as engine/parsing.py reads them.
MIN_ITEMS, MAX_ITEMS, MAX_ITEM_CHARS = 1, 10, 200


def answer_schema(kind: str, codes: Sequence[str], rules: Mapping[str, Any] | None = None) -> dict:
    """``{"answer": …}`` where the value is one code (ordinal, nominal), a list of codes or the none code alone
    (code sets), or a list of short strings (string lists)."""
    return {"type": "object", "properties": {ANSWER_KEY: _value_schema(kind, list(codes), dict(rules or {}))},
            "required": [ANSWER_KEY], "additionalProperties": False}


def set_codes(codes: Sequence[str], rules: Mapping[str, Any]) -> tuple[list[str], str | None]:
    """A code set's codes that may go together, and its code that must stand alone (None: it has none)."""
    none_code = rules.get("none_code") or None
    return [code for code in codes if code != none_code], none_code


def _code_array(codes: list[str]) -> dict:
    return {"type": "array", "items": {"type": "string", "enum": codes}, "minItems": 1, "maxItems": len(codes)}


def _value_schema(kind: str, codes: list[str], rules: dict) -> dict:
    if kind in ("ordinal", "nominal"):
        return {"type": "string", "enum": codes}
    if kind == "code_set":
        combinable, none_code = set_codes(codes, rules)
        choices = ([_code_array(combinable)] if combinable else []) + ([_code_array([none_code])] if none_code else [])
        if len(choices) == 2:
            return {"anyOf": choices}
        return choices[0] if choices else _code_array([])  # no codes: a domain that fails its own clean()
    if kind == "string_list":
        return {"type": "array",
                "items": {"type": "string", "minLength": 1, "maxLength": rules.get("max_item_chars", MAX_ITEM_CHARS)},
                "minItems": rules.get("min_items", MIN_ITEMS), "maxItems": rules.get("max_items", MAX_ITEMS)}
    raise ValueError(f"unsupported domain kind {kind!r}")
