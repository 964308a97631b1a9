"""Read an LLM annotator's answer: the final `<<...>>` marker of a free-text reply, or a structured (JSON) reply.

The parser is deliberately strict: a reply that cannot be read without guessing is a failure with a
machine-readable reason and a sentence for humans, never a silently "repaired" label. Both forms share the
validation of codes and lists, so a label means the same whichever way it was asked for.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from workers_app.models.answer_schema import ANSWER_KEY, MAX_ITEM_CHARS, MAX_ITEMS, MIN_ITEMS

EMPTY_ANSWER = "empty_answer"
NO_MARKER = "no_marker"
UNCLOSED_MARKER = "unclosed_marker"
REFUSAL = "refusal"
EMPTY_MARKER = "empty_marker"
UNKNOWN_CODE = "unknown_code"
MULTIPLE_CODES = "multiple_codes"
AMBIGUOUS = "ambiguous"
NONE_WITH_CODES = "none_with_codes"
DUPLICATE_CODE = "duplicate_code"
INVALID_JSON = "invalid_json"
NOT_A_LIST = "not_a_list"
ITEM_NOT_STRING = "item_not_string"
EMPTY_ITEM = "empty_item"
TOO_FEW_ITEMS = "too_few_items"
TOO_MANY_ITEMS = "too_many_items"
ITEM_TOO_LONG = "item_too_long"
ITEM_BAD_CHARACTER = "item_bad_character"
# Structured (JSON) answers only:
NOT_AN_OBJECT = "not_an_object"
MISSING_ANSWER = "missing_answer"
EXTRA_KEYS = "extra_keys"
DUPLICATE_KEY = "duplicate_key"
WRONG_TYPE = "wrong_type"

REASONS = (
    EMPTY_ANSWER,
    NO_MARKER,
    UNCLOSED_MARKER,
    REFUSAL,
    EMPTY_MARKER,
    UNKNOWN_CODE,
    MULTIPLE_CODES,
    AMBIGUOUS,
    NONE_WITH_CODES,
    DUPLICATE_CODE,
    INVALID_JSON,
    NOT_A_LIST,
    ITEM_NOT_STRING,
    EMPTY_ITEM,
    TOO_FEW_ITEMS,
    TOO_MANY_ITEMS,
    ITEM_TOO_LONG,
    ITEM_BAD_CHARACTER,
    NOT_AN_OBJECT,
    MISSING_ANSWER,
    EXTRA_KEYS,
    DUPLICATE_KEY,
    WRONG_TYPE,
)

ORDINAL = "ordinal"
NOMINAL = "nominal"
CODE_SET = "code_set"
STRING_LIST = "string_list"

_OPEN = "<<"
_CLOSE = ">>"
# Semicolons are tolerated because models trained on prose lists use them interchangeably with commas.
_SEPARATORS = re.compile(r"[,;]")
_JSON_SPACE = re.compile(r"[ \t\n\r]*")
_DECODER = json.JSONDecoder()
_DETAIL_SNIPPET = 60
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")

# Only phrases that almost never occur in a genuine attempt at the task; "I can't tell" is doubt, not refusal,
# so "can't"/"cannot" count only when followed by a verb of doing the job.
_JOB_VERBS = (
    r"(?:help|assist|comply|provide|do|fulfil|fulfill|answer|engage|continue|complete|participate|classify|label"
    r"|annotate|code|rate|support|share)"
)
_REFUSAL = re.compile(
    r"\bI(?:'m| am) sorry\b"
    r"|\bas an AI\b"
    r"|\bI (?:won't|will not)\b"
    r"|\bI must (?:decline|refuse)\b"
    rf"|\bI (?:can't|cannot|can not) {_JOB_VERBS}\b"
    rf"|\bI(?:'m| am) (?:unable|not able) to {_JOB_VERBS}\b",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class ParseResult:
    ok: bool
    labels: tuple[str, ...]
    reason: str = ""
    detail: str = ""


def parse_answer(
    answer: str | None, *, kind: str, codes: Sequence[str], rules: Mapping[str, Any] | None = None
) -> ParseResult:
    """Parse the last `<<...>>` marker of `answer` as a label of the given domain kind."""
    parser = _PARSERS.get(str(kind))
    if parser is None:
        # A wrong kind is a bug in the caller, not a bad model answer, so it must not be recorded as one.
        raise ValueError(f"unsupported domain kind {kind!r}; expected one of {', '.join(_PARSERS)}")
    if answer is None or not answer.strip():
        return _fail(EMPTY_ANSWER, "the answer is empty")
    content = _marker_content(answer, json_aware=str(kind) == STRING_LIST)
    if isinstance(content, ParseResult):
        return content
    if not content.strip():
        return _fail(EMPTY_MARKER, "the final <<...>> marker is empty")
    return parser(content, tuple(codes), dict(rules or {}))


def _ok(labels: Sequence[str]) -> ParseResult:
    return ParseResult(ok=True, labels=tuple(labels))


def _fail(reason: str, detail: str) -> ParseResult:
    return ParseResult(ok=False, labels=(), reason=reason, detail=detail)


def _show(text: str) -> str:
    if len(text) > _DETAIL_SNIPPET:
        text = text[: _DETAIL_SNIPPET - 3] + "..."
    return repr(text)


# ---------------------------------------------------------------------------------------------- finding the marker


def _marker_content(answer: str, *, json_aware: bool) -> str | ParseResult:
    last_open = answer.rfind(_OPEN)
    if last_open < 0:
        return _no_marker(answer)
    if json_aware:
        content = _json_marker_content(answer, last_open)
        if content is not None:
            return content
    return _plain_marker_content(answer, last_open, use_last_close=json_aware)


def _reads_like_refusal(answer: str) -> bool:
    # Curly apostrophes are what chat models usually emit; the patterns are written with straight ones.
    return _REFUSAL.search(answer.replace("\u2019", "'")) is not None


def _no_marker(answer: str) -> ParseResult:
    if _reads_like_refusal(answer):
        return _fail(REFUSAL, "the answer reads like a refusal and has no <<...>> marker")
    return _fail(NO_MARKER, "no <<...>> marker found in the answer")


def _plain_marker_content(answer: str, last_open: int, *, use_last_close: bool) -> str | ParseResult:
    start = last_open + len(_OPEN)
    # Codes never contain '>', so the first '>>' closes them; free text may, so for lists take the last one.
    close = answer.rfind(_CLOSE, start) if use_last_close else answer.find(_CLOSE, start)
    if close < 0:
        opened = _show(answer[last_open:])
        return _fail(UNCLOSED_MARKER, f"the final marker {opened} is opened with << but never closed")
    return answer[start:close]


def _json_marker_content(answer: str, last_open: int) -> str | None:
    """Find the marker whose JSON body legitimately contains '<<' or '>>' inside its strings.

    A marker starting before the last '<<' only counts if its JSON runs past that '<<' (so the '<<' was inside a
    string); otherwise an earlier template echo could win. Lists are preferred because a stray '<<' inside an item
    could otherwise start a bogus scalar "marker" of its own.
    """
    candidates = []
    for start in _positions(answer, _OPEN, upto=last_open):
        found = _json_candidate(answer, start)
        if found is not None and (start == last_open or found[2] > last_open):
            candidates.append(found)
    lists = [found for found in candidates if isinstance(found[1], list)]
    chosen = (lists or candidates or [None])[0]
    return None if chosen is None else chosen[0]


def _positions(text: str, needle: str, *, upto: int) -> list[int]:
    return [index for index in range(upto + 1) if text.startswith(needle, index)]


def _json_candidate(answer: str, start: int) -> tuple[str, Any, int] | None:
    """Return (content, decoded value, position of the closing '>>') if a JSON value sits right inside '<<' '>>'."""
    begin = start + len(_OPEN)
    try:
        value, end = _DECODER.raw_decode(answer, _JSON_SPACE.match(answer, begin).end())
    except (ValueError, RecursionError):
        return None
    close = _JSON_SPACE.match(answer, end).end()
    if not answer.startswith(_CLOSE, close):
        return None
    return answer[begin:close], value, close


# ---------------------------------------------------------------------------------------------- codes


class _Vocabulary:
    """The valid codes of a domain, matched exactly first and then case-insensitively.

    Case-insensitive matching is accepted because models often lower-case codes ("level_3", "ta-1") while meaning
    exactly the catalogue code; the catalogue spelling is always returned. It is only used when it is unambiguous
    (no two codes differ by case alone), and it never relaxes anything else: "INT-12" stays unknown.
    """

    def __init__(self, codes: Sequence[str]) -> None:
        self.codes = tuple(dict.fromkeys(codes))
        by_fold: dict[str, list[str]] = {}
        for code in self.codes:
            by_fold.setdefault(code.casefold(), []).append(code)
        self._folded = {fold: same[0] for fold, same in by_fold.items() if len(same) == 1}

    def resolve(self, token: str) -> str | None:
        if token in self.codes:
            return token
        return self._folded.get(token.casefold())

    def mentioned_in(self, text: str) -> list[str]:
        """Codes that appear in `text` as whole tokens, e.g. both codes in 'LEVEL_2 or LEVEL_4'."""
        return [code for code in self.codes if _mention_pattern(code).search(text)]

    def listing(self) -> str:
        return ", ".join(self.codes)


def _mention_pattern(code: str) -> re.Pattern[str]:
    # Codes are built from word characters and hyphens, so a neighbouring one means a longer, different token.
    return re.compile(rf"(?<![\w-]){re.escape(code)}(?![\w-])", re.IGNORECASE)


def _tokens(content: str) -> list[str]:
    # Empty pieces ("TA-1, , TA-5" or a trailing comma) carry no meaning, so they are dropped rather than rejected.
    return [piece.strip() for piece in _SEPARATORS.split(content) if piece.strip()]


def _unknown(token: str, vocabulary: _Vocabulary) -> ParseResult:
    detail = f"unknown code {_show(token)} (valid: {vocabulary.listing()})"
    if len(vocabulary.mentioned_in(token)) > 1:
        detail += "; separate codes with commas"
    return _fail(UNKNOWN_CODE, detail)


def _parse_single(content: str, codes: Sequence[str], rules: Mapping[str, Any]) -> ParseResult:
    vocabulary = _Vocabulary(codes)
    tokens = _tokens(content)
    if not tokens:
        return _fail(EMPTY_MARKER, f"the final marker {_show(content)} holds only separators")
    resolved = [vocabulary.resolve(token) for token in tokens]
    if len(tokens) == 1 and resolved[0] is not None:
        return _ok(resolved)
    for token, code in zip(tokens, resolved, strict=True):
        if code is None and not vocabulary.mentioned_in(token):
            return _unknown(token, vocabulary)
    if all(resolved):
        return _fail(MULTIPLE_CODES, f"expected exactly one code, got {len(tokens)}: {', '.join(resolved)}")
    mentioned = ", ".join(vocabulary.mentioned_in(content))
    return _fail(AMBIGUOUS, f"expected exactly one code and nothing else, got {_show(content.strip())} ({mentioned})")


def _parse_code_set(content: str, codes: Sequence[str], rules: Mapping[str, Any]) -> ParseResult:
    tokens = _tokens(content)
    if not tokens:
        return _fail(EMPTY_MARKER, f"the final marker {_show(content)} holds only separators")
    return _code_set_labels(tokens, codes, rules)


def _set_vocabulary(codes: Sequence[str], rules: Mapping[str, Any]) -> tuple[_Vocabulary, str | None]:
    none_code = rules.get("none_code") or None
    return _Vocabulary([*codes, none_code] if none_code else codes), none_code


def _code_set_labels(tokens: Sequence[str], codes: Sequence[str], rules: Mapping[str, Any]) -> ParseResult:
    vocabulary, none_code = _set_vocabulary(codes, rules)
    chosen = []
    for token in tokens:
        code = vocabulary.resolve(token)
        if code is None:
            return _unknown(token, vocabulary)
        chosen.append(code)
    problem = _set_problem(chosen, none_code)
    if problem is not None:
        return problem
    return _ok([code for code in vocabulary.codes if code in chosen])


def _set_problem(chosen: list[str], none_code: str | None) -> ParseResult | None:
    repeated = [code for index, code in enumerate(chosen) if code in chosen[:index]]
    if repeated:
        # A repeated code usually means the model lost track of its own list, so the answer is not trusted.
        return _fail(DUPLICATE_CODE, f"code {repeated[0]!r} is given more than once")
    if none_code is not None and none_code in chosen and len(chosen) > 1:
        others = ", ".join(code for code in chosen if code != none_code)
        return _fail(NONE_WITH_CODES, f"{none_code!r} must stand alone but was combined with {others}")
    return None


# ---------------------------------------------------------------------------------------------- string lists

_JSON_TYPE_NAMES = {dict: "object", str: "string", int: "number", float: "number", bool: "boolean", type(None): "null"}


def _json_type(value: Any) -> str:
    return _JSON_TYPE_NAMES.get(type(value), type(value).__name__)


def _parse_string_list(content: str, codes: Sequence[str], rules: Mapping[str, Any]) -> ParseResult:
    try:
        value = json.loads(content)
    except (ValueError, RecursionError) as error:
        return _fail(INVALID_JSON, f"the final marker {_show(content.strip())} is not valid JSON ({error})")
    return _string_list_labels(value, rules)


def _string_list_labels(value: Any, rules: Mapping[str, Any]) -> ParseResult:
    if not isinstance(value, list):
        return _fail(NOT_A_LIST, f"expected a JSON list of strings, got a JSON {_json_type(value)}")
    problem = _count_problem(len(value), int(rules.get("min_items", MIN_ITEMS)),
                             int(rules.get("max_items", MAX_ITEMS)))
    if problem is not None:
        return problem
    items = []
    for position, item in enumerate(value, start=1):
        problem = _item_problem(position, item, int(rules.get("max_item_chars", MAX_ITEM_CHARS)))
        if problem is not None:
            return problem
        items.append(item.strip())
    return _ok(items)


def _count_problem(count: int, min_items: int, max_items: int) -> ParseResult | None:
    if count < min_items:
        return _fail(TOO_FEW_ITEMS, f"expected at least {min_items} item(s), got {count}")
    if count > max_items:
        return _fail(TOO_MANY_ITEMS, f"expected at most {max_items} items, got {count}")
    return None


def _item_problem(position: int, item: Any, max_chars: int) -> ParseResult | None:
    if not isinstance(item, str):
        return _fail(ITEM_NOT_STRING, f"item {position} is a JSON {_json_type(item)}, not a string")
    if not item.strip():
        return _fail(EMPTY_ITEM, f"item {position} is empty")
    if len(item.strip()) > max_chars:
        return _fail(ITEM_TOO_LONG, f"item {position} has {len(item.strip())} characters, more than {max_chars}")
    if _UNSTORABLE.search(item):
        # JSON may spell them (\u0000, \ud800); no database stores them in a label.
        return _fail(ITEM_BAD_CHARACTER, f"item {position} holds a NUL character or a lone surrogate")
    return None


_PARSERS: dict[str, Callable[[str, Sequence[str], Mapping[str, Any]], ParseResult]] = {
    ORDINAL: _parse_single,
    NOMINAL: _parse_single,
    CODE_SET: _parse_code_set,
    STRING_LIST: _parse_string_list,
}


# ---------------------------------------------------------------------------------------------- structured answers


class _DuplicateKey(ValueError):
    pass


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict:
    # json.loads keeps the last of two equal keys without a word: {"answer": "A", "answer": "B"} is not read.
    document = dict(pairs)
    if len(document) < len(pairs):  # a set, not a scan per key: an answer may hold tens of thousands of keys
        seen: set[str] = set()
        raise _DuplicateKey(next(key for key, _ in pairs if key in seen or seen.add(key)))
    return document


def _unreadable_json(text: str, error: ValueError | RecursionError) -> ParseResult:
    if _reads_like_refusal(text):
        return _fail(REFUSAL, "the answer reads like a refusal and is not JSON")
    ended_early = isinstance(error, json.JSONDecodeError) and (
        error.pos >= len(text) or error.msg.startswith("Unterminated string"))
    if ended_early and text[:1] in "{[":
        return _fail(INVALID_JSON, f"the JSON ends early, cut off (is max_tokens too small?): {_show(text)}")
    if text[:1] not in "{[":
        return _fail(INVALID_JSON, f"the answer is not JSON (did the server ignore the structured-output "
                                   f"parameter?): {_show(text)}")
    return _fail(INVALID_JSON, f"the answer is not valid JSON ({_show(str(error))}): {_show(text)}")


def parse_json_answer(
    answer: str | None, *, kind: str, codes: Sequence[str], rules: Mapping[str, Any] | None = None
) -> ParseResult:
    """Read a structured answer: the whole reply is one JSON object ``{"answer": value}`` (white space around it
    allowed, nothing else), its value validated as a marker's content is, with the same reason codes."""
    parser = _JSON_PARSERS.get(str(kind))
    if parser is None:
        raise ValueError(f"unsupported domain kind {kind!r}; expected one of {', '.join(_JSON_PARSERS)}")
    if answer is None or not answer.strip():
        return _fail(EMPTY_ANSWER, "the answer is empty")
    text = answer.strip()
    try:
        document = json.loads(text, object_pairs_hook=_unique_keys)
    except _DuplicateKey as repeated:
        return _fail(DUPLICATE_KEY, f"the key {_show(str(repeated))} is given more than once")
    except (ValueError, RecursionError) as error:  # RecursionError: nested deeper than Python's stack
        return _unreadable_json(text, error)
    if not isinstance(document, dict):
        return _fail(NOT_AN_OBJECT, f'expected a JSON object {{"{ANSWER_KEY}": ...}}, got a JSON {_json_type(document)}')
    if ANSWER_KEY not in document:
        return _fail(MISSING_ANSWER, f'the object has no "{ANSWER_KEY}" key')
    extra = [key for key in document if key != ANSWER_KEY]
    if extra:
        return _fail(EXTRA_KEYS, f'only "{ANSWER_KEY}" is expected; also got {", ".join(_show(k) for k in extra[:5])}')
    return parser(document[ANSWER_KEY], tuple(codes), dict(rules or {}))


def _json_single(value: Any, codes: Sequence[str], rules: Mapping[str, Any]) -> ParseResult:
    if not isinstance(value, str):
        return _fail(WRONG_TYPE, f"expected one code as a JSON string, got a JSON {_json_type(value)}")
    if not value.strip():
        return _fail(EMPTY_MARKER, "the answer is an empty string")
    return _parse_single(value, codes, rules)


def _json_code_set(value: Any, codes: Sequence[str], rules: Mapping[str, Any]) -> ParseResult:
    if not isinstance(value, list):
        return _fail(NOT_A_LIST, f"expected a JSON list of codes, got a JSON {_json_type(value)}")
    vocabulary, _ = _set_vocabulary(codes, rules)
    problem = _count_problem(len(value), 1, len(vocabulary.codes))
    if problem is not None:
        return problem
    for position, item in enumerate(value, start=1):
        if not isinstance(item, str):
            return _fail(ITEM_NOT_STRING, f"item {position} is a JSON {_json_type(item)}, not a code")
    return _code_set_labels([item.strip() for item in value], codes, rules)


_JSON_PARSERS: dict[str, Callable[[Any, Sequence[str], Mapping[str, Any]], ParseResult]] = {
    ORDINAL: _json_single,
    NOMINAL: _json_single,
    CODE_SET: _json_code_set,
    STRING_LIST: lambda value, codes, rules: _string_list_labels(value, rules),
}


def parse_completion(completion: Any, domain: Any, *, structured: bool) -> ParseResult:
    """A completion (engine.backends.Completion) as the engine reads it for ``domain``: a refusal the server reports
    is one; otherwise the JSON a structured request asked for, or the last marker of free text."""
    if completion.refused:
        return ParseResult(ok=False, labels=(), reason=REFUSAL, detail="the server reports that the model refused "
                           "(message.refusal); its reason is the raw answer")
    parse = parse_json_answer if structured else parse_answer
    return parse(completion.text, kind=domain.kind, codes=domain.code_list, rules=domain.parse_rules)
