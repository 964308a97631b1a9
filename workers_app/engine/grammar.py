"""A GBNF grammar (llama.cpp's grammar language) for a domain's structured answer.

The grammar allows exactly the JSON text ``json.dumps`` writes for a valid answer, on one line: ``{"answer":
"LEVEL_2"}``, ``{"answer": ["ADJ-3", "ADJ-6"]}``, ``{"answer": ["NONE"]}``, ``{"answer": ["sleep"]}``. It is
stricter than the JSON schema where a grammar can be: the codes of a set come in catalogue order, so none can repeat
and the none code cannot join others. The server stops when the grammar is complete, so no stop string is needed.

A grammar the server cannot parse crashes llama-cpp-python's server (measured with 0.3.36), so everything here is
built from codes the catalogue has checked (letters, digits, ``_ . -``) and escaped all the same.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from workers_app.models.answer_schema import ANSWER_KEY, MAX_ITEM_CHARS, MAX_ITEMS, MIN_ITEMS, set_codes

# One character of a JSON string: anything but a quote, a backslash or a control character, or a simple escape.
_CHAR = r'[^"\\\x00-\x1f] | "\\" ["\\/]'
# The first character of an item is not white space, so no item is empty once stripped.
_FIRST = r'[^"\\\x00-\x20] | "\\" ["\\/]'


def _literal(text: str) -> str:
    """``text`` as a GBNF string literal."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _code(code: str) -> str:
    return _literal(json.dumps(code))


def _single(codes: Sequence[str]) -> list[str]:
    # No codes is a domain its own clean() refuses; its grammar must still parse.
    return ["value ::= " + " | ".join([_code(code) for code in codes] or [_code("")])]


def _code_set(codes: Sequence[str], rules: Mapping[str, Any]) -> list[str]:
    """``from_i`` is any non-empty run of the codes i..n in catalogue order: linear in the number of codes."""
    combinable, none_code = set_codes(codes, rules)
    choices = [_literal("[") + " from0 " + _literal("]")] if combinable else []
    if none_code:
        choices.append(_literal("[" + json.dumps(none_code) + "]"))
    lines = ["value ::= " + " | ".join(choices or [_literal("[]")])]
    last = len(combinable) - 1
    for index, code in enumerate(combinable):
        if index == last:
            lines.append(f"from{index} ::= {_code(code)}")
        else:
            lines.append(f"from{index} ::= {_code(code)} ({_literal(', ')} from{index + 1})? | from{index + 1}")
    return lines


def _string_list(rules: Mapping[str, Any]) -> list[str]:
    least, most = rules.get("min_items", MIN_ITEMS), rules.get("max_items", MAX_ITEMS)
    length = rules.get("max_item_chars", MAX_ITEM_CHARS)
    more = f" ({_literal(', ')} item){{{max(least - 1, 0)},{most - 1}}}" if most > 1 else ""
    items = f"item{more}" if least >= 1 else f"(item{more})?"
    rest = f" char{{0,{length - 1}}}" if length > 1 else ""
    return [f"value ::= {_literal('[')} {items} {_literal(']')}",
            f"item ::= {_literal(chr(34))} first{rest} {_literal(chr(34))}",
            f"first ::= {_FIRST}", f"char ::= {_CHAR}"]


def answer_grammar(kind: str, codes: Sequence[str], rules: Mapping[str, Any] | None = None) -> str:
    rules = dict(rules or {})
    if kind in ("ordinal", "nominal"):
        lines = _single(codes)
    elif kind == "code_set":
        lines = _code_set(codes, rules)
    elif kind == "string_list":
        lines = _string_list(rules)
    else:
        raise ValueError(f"unsupported domain kind {kind!r}")
    opening = _literal("{" + json.dumps(ANSWER_KEY) + ": ")
    return "\n".join([f"root ::= {opening} value {_literal('}')}", *lines]) + "\n"
