"""Cell text and cell XML for the worksheet: what Excel accepts, escaped so it stays literal."""

from __future__ import annotations

import datetime as dt
import math
import re

__all__ = ["EXCEL_CELL_LIMIT", "cell", "column_letter", "safe_cell_text", "text_cell", "xml_attr", "xml_text"]

EXCEL_CELL_LIMIT = 32767
# Excel keeps 15 significant digits; larger integers (ids, hashes) would be rounded silently.
_EXACT_INT_LIMIT = 10**15

_XML_ILLEGAL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
# Excel decodes _xHHHH_ inside cell text (ST_Xstring); escaping the underscore keeps such text literal.
_OOXML_ESCAPE_LOOKALIKE = re.compile(r"_(?=x[0-9A-Fa-f]{4}_)")


def safe_cell_text(value: str) -> str:
    """Make text storable in an xlsx cell: XML-legal and within Excel's per-cell limit."""
    text = _XML_ILLEGAL.sub("\ufffd", value)
    # Every code point takes at most two UTF-16 units, so short text needs no exact count.
    if len(text) <= EXCEL_CELL_LIMIT // 2 or _utf16_units(text) <= EXCEL_CELL_LIMIT:
        return text
    marker = f" …[cut: {len(text):,} characters in all; the full text is in the database]"
    budget = EXCEL_CELL_LIMIT - _utf16_units(marker)
    units = text.encode("utf-16-le")[: 2 * budget]
    if 0xD800 <= int.from_bytes(units[-2:], "little") <= 0xDBFF:
        units = units[:-2]  # never keep half of a surrogate pair
    return units.decode("utf-16-le") + marker


def _utf16_units(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def xml_text(text: str) -> str:
    """Escape for element content; a raw CR would be normalised to LF by every XML parser."""
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace("\r", "&#13;")
    return _OOXML_ESCAPE_LOOKALIKE.sub("_x005F_", text)


def xml_attr(text: str) -> str:
    return xml_text(text).replace('"', "&quot;")


def column_letter(index: int) -> str:
    """1 -> A, 27 -> AA."""
    letters = ""
    while index:
        index, rest = divmod(index - 1, 26)
        letters = chr(65 + rest) + letters
    return letters


def text_cell(ref: str, text: str, style: str) -> str:
    body = xml_text(safe_cell_text(text))
    return f'<c r="{ref}"{style} t="inlineStr"><is><t xml:space="preserve">{body}</t></is></c>'


def cell(ref: str, value: object, style: str) -> str:
    """One <c> element; inline strings only, so text can never turn into a formula."""
    if value is None or (isinstance(value, str) and not value):
        return f'<c r="{ref}"{style}/>' if style else ""
    if isinstance(value, bool):
        return f'<c r="{ref}"{style} t="b"><v>{int(value)}</v></c>'
    if isinstance(value, int) and abs(value) < _EXACT_INT_LIMIT:
        return f'<c r="{ref}"{style}><v>{int(value)}</v></c>'
    if isinstance(value, float) and math.isfinite(value):
        return f'<c r="{ref}"{style}><v>{float(value)!r}</v></c>'
    if isinstance(value, (dt.datetime, dt.date, dt.time)):
        # ISO text needs no number format and cannot be misread as a serial day number.
        return text_cell(ref, value.isoformat(), style)
    return text_cell(ref, value if isinstance(value, str) else str(value), style)
