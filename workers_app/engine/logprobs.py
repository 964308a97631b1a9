"""The chosen label's probability, from the token log-probabilities an OpenAI-compatible server sends.

What is measured: the probability the model gave the tokens that spell the chosen code(s), that is the product of
exp(logprob) over every token that overlaps the code's text where the answer last names it (the final marker, or
the JSON answer, comes last). A set of codes multiplies the tokens of all of them (each token once): the
probability of spelling that whole set there. It is the model's own belief in its label given everything it wrote
before, not a calibrated probability of being right: the calibration table (stats/calibration.py) tells how far
the two are apart against a reference set.

Servers send logprobs in two shapes: chat completions ``choices[0].logprobs.content = [{"token", "logprob"}, ...]``
and text completions ``choices[0].logprobs = {"tokens": [...], "token_logprobs": [...]}``. Anything else (missing,
non-numeric, NaN, infinite, positive, arrays of unequal length or longer than any answer can be) reads as "no
logprobs": the confidence stays null, the answer itself is untouched.
"""

from __future__ import annotations

import math
import re
from bisect import bisect_right
from collections.abc import Sequence
from itertools import accumulate

# No answer has more tokens than the largest max_tokens an annotator may ask for (Annotator.max_tokens).
MAX_TOKENS = 32_768

Tokens = tuple[tuple[str, float], ...]


def _logprob(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    value = float(value)
    return value if math.isfinite(value) and value <= 0.0 else None


def _checked(pairs: Sequence[tuple[object, object]]) -> Tokens | None:
    tokens = []
    for text, value in pairs:
        logprob = _logprob(value)
        if not isinstance(text, str) or logprob is None:
            return None
        tokens.append((text, logprob))
    return tuple(tokens) if tokens else None


def _chat_tokens(logprobs: dict) -> Tokens | None:
    content = logprobs.get("content")
    if not isinstance(content, list) or len(content) > MAX_TOKENS:
        return None
    if not all(isinstance(entry, dict) for entry in content):
        return None
    return _checked([(entry.get("token"), entry.get("logprob")) for entry in content])


def _completion_tokens(logprobs: dict) -> Tokens | None:
    texts, values = logprobs.get("tokens"), logprobs.get("token_logprobs")
    if not isinstance(texts, list) or not isinstance(values, list) or len(texts) != len(values):
        return None
    if len(texts) > MAX_TOKENS:
        return None
    return _checked(list(zip(texts, values, strict=True)))


def token_logprobs(choice: object, *, completion: bool) -> Tokens | None:
    """The (token text, logprob) pairs of a server's first choice, or None where it sent none readable."""
    logprobs = choice.get("logprobs") if isinstance(choice, dict) else None
    if not isinstance(logprobs, dict):
        return None
    return _completion_tokens(logprobs) if completion else _chat_tokens(logprobs)


def _last_mention(text: str, label: str) -> tuple[int, int] | None:
    # A whole code, as the parser reads one (in any case): INT-1 is not found inside INT-12.
    found = None
    for found in re.finditer(rf"(?<![\w-]){re.escape(label)}(?![\w-])", text, re.IGNORECASE):
        pass
    return found.span() if found else None


def label_probability(tokens: Tokens | None, labels: Sequence[str]) -> float | None:
    """The probability of the tokens that spell ``labels`` where the answer last names each (see the module's
    docstring); None without tokens or labels, or when a label is not in the tokens' text."""
    if not tokens or not labels:
        return None
    text = "".join(token for token, _ in tokens)
    starts = [0, *accumulate(len(token) for token, _ in tokens)][:-1]
    spelling: set[int] = set()
    for label in labels:
        span = _last_mention(text, label)
        if span is None:
            return None
        start, end = span
        first = bisect_right(starts, start) - 1  # the token holding the label's first character
        last = bisect_right(starts, end - 1) - 1  # and its last
        spelling.update(range(first, last + 1))
    return math.exp(sum(tokens[index][1] for index in spelling))
