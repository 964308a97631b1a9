"""JSON bodies of bounded depth.

Python's JSON decoder recurses once per level of nesting: a body of a thousand ``[`` ends in RecursionError, which
would be a 500 with a traceback in the log. Nothing this API takes is nested more than a few levels, so anything
deeper than MAX_DEPTH is refused as a malformed request (400) before any view or serializer walks it.
"""

from __future__ import annotations

from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser

MAX_DEPTH = 32


def deeper_than(value: object, limit: int) -> bool:
    """Whether ``value`` (decoded JSON) nests lists and objects more than ``limit`` levels; without recursion."""
    pending = [(value, 1)]
    while pending:
        item, depth = pending.pop()
        if isinstance(item, (list, dict)):
            if depth > limit:
                return True
            pending.extend((child, depth + 1) for child in (item.values() if isinstance(item, dict) else item))
    return False


class BoundedJSONParser(JSONParser):
    def parse(self, stream, media_type=None, parser_context=None):
        refusal = f"JSON parse error - the body is nested more than {MAX_DEPTH} levels deep"
        try:
            data = super().parse(stream, media_type, parser_context)
        except RecursionError:
            raise ParseError(refusal) from None
        if deeper_than(data, MAX_DEPTH):
            raise ParseError(refusal)
        return data
