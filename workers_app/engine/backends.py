"""The LLM backends behind one small interface: ``backend_for(annotator).complete(request)``."""

from __future__ import annotations

import json
import logging
import time
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from typing import Protocol

import httpx
import redis
from django.conf import settings

from annotation_site.outbound import OutboundRefused, policy_client, time_limit
from workers_app.baselines.files import ModelFileRefused
from workers_app.baselines.loaded import loaded_baseline
from workers_app.models import Annotator
from workers_app.redis_client import get_redis

from .api_keys import ApiKeyUnavailable, api_key_for
from .builtin import BUILTIN_MODEL, PROFILES, REFERENCE, builtin_answer
from .logprobs import Tokens, token_logprobs
from .ratelimit import counters_key
from .structured import AnswerFormat

log = logging.getLogger(__name__)

ERROR_BODY_CHARS = 300
READ_CHUNK = 64 * 1024
MODEL_CHARS = 200  # Outcome.model
MAX_TOKEN_COUNT = 2**31 - 1  # the largest value a PositiveIntegerField holds on every database


@dataclass(frozen=True)
class BackendRequest:
    prompt: str
    text: str
    domain: str
    codes: tuple[str, ...]
    attempt: int
    answer_format: AnswerFormat | None = None  # structured output: the schema the answer must follow


@dataclass(frozen=True)
class Completion:
    text: str
    model: str
    latency_ms: int
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    # Of the prompt tokens, those read from / written to the provider's prompt cache, where it reports them.
    cache_read_tokens: int | None = None
    cache_write_tokens: int | None = None
    refused: bool = False  # the server said the model refused (OpenAI's message.refusal); text is its reason
    # (token text, logprob) of the answer's tokens, where the annotator asked for them and the server sent them.
    logprobs: Tokens | None = None
    confidence: float | None = None  # the answer's probability, where the backend knows it (the trained baseline)
    # The same request always gets this answer (a fitted model): a malformed one is stored at once, not asked again.
    final: bool = False


class TransientBackendError(Exception):
    """Worth retrying: 429, 5xx, a timeout, a broken connection or an unreadable answer."""

    def __init__(self, message: str, retry_after: float | None = None):
        super().__init__(message)
        self.retry_after = retry_after


class PermanentBackendError(Exception):
    """Retrying will not help (bad key, bad request, missing configuration): stop calling."""


class StructuredOutputRefused(PermanentBackendError):
    """The server refused the request's structured-output parameter (its error names it): asking again the same
    way cannot help; free text might, if staff allowed that fallback."""


class Backend(Protocol):
    def complete(self, request: BackendRequest) -> Completion: ...


class BuiltinBackend:
    """The offline keyword baseline; latency, malformed rate and profile are knobs for demos and benchmarks."""

    def __init__(self, annotator: Annotator):
        self.number = annotator.number
        self.latency = annotator.builtin_latency_ms / 1000
        self.malformed_rate = annotator.builtin_malformed_rate
        self.profile = PROFILES.get(annotator.builtin_profile, REFERENCE)
        # Outcomes name the profile that answered (the reference keeps the plain name it always had).
        self.model = BUILTIN_MODEL if self.profile is REFERENCE else f"{BUILTIN_MODEL}/{self.profile.name}"

    def complete(self, request: BackendRequest) -> Completion:
        started = time.monotonic()
        if self.latency:
            time.sleep(self.latency)
        text = builtin_answer(request.text, domain=request.domain, codes=request.codes,
                              malformed_rate=self.malformed_rate, salt=f"{self.number}:{request.attempt}",
                              profile=self.profile, prompt=request.prompt)
        return Completion(text, self.model, int((time.monotonic() - started) * 1000))


class TrainedBackend:
    """The annotator's trained baseline (TF-IDF + logistic regression, workers_app.baselines): offline, a few
    milliseconds per answer, with the chosen label's probability as its confidence. A model file that is missing,
    stale or not ours is a permanent error (no domain can answer). A domain the model never learned gets an answer
    without a label, stored once as malformed with the reason in its text: the annotator's learned domains go on."""

    def __init__(self, annotator: Annotator):
        try:
            self.baseline = loaded_baseline(annotator)
        except ModelFileRefused as exc:
            raise PermanentBackendError(str(exc)) from None

    def complete(self, request: BackendRequest) -> Completion:
        started = time.monotonic()
        if not self.baseline.knows(request.domain):
            return Completion(self.baseline.not_learned(request.domain), self.baseline.name, 0, final=True)
        label, probability = self.baseline.answer(request.domain, request.text)
        return Completion(f"{self.baseline.name}: probability {probability:.3f} <<{label}>>", self.baseline.name,
                          int((time.monotonic() - started) * 1000), confidence=probability, final=True)


@cache
def _http_client() -> httpx.Client:
    # One pooled client per process, shared by the worker's threads (httpx.Client is thread-safe).
    return policy_client(limits=httpx.Limits(max_connections=64, max_keepalive_connections=32))


@dataclass(frozen=True)
class _Reply:
    status: int
    headers: httpx.Headers
    body: bytes  # at most LLM_MAX_RESPONSE_BYTES
    complete: bool  # False: the body was longer and reading stopped at the cap


def _decoded_chunks(response: httpx.Response) -> Iterator[bytes]:
    """The body in pieces of at most READ_CHUNK bytes. Inflated here, not by httpx: httpx inflates a whole received
    piece at once, and 64 KB of gzip can hold 64 MB of zeros."""
    encoding = response.headers.get("content-encoding", "identity").strip().lower()
    if encoding == "identity":
        yield from response.iter_raw(READ_CHUNK)
        return
    if encoding not in ("gzip", "x-gzip", "deflate"):
        raise TransientBackendError(f"unreadable answer: content-encoding {encoding[:40]!r}, which was not asked for")
    inflater = zlib.decompressobj(32 + zlib.MAX_WBITS)  # reads a gzip or a zlib header
    for compressed in response.iter_raw(READ_CHUNK):
        pending = compressed
        while pending:
            yield inflater.decompress(pending, READ_CHUNK)
            pending = inflater.unconsumed_tail
    yield inflater.flush()


def _read_capped(response: httpx.Response, deadline: float, cap: int) -> tuple[bytes, bool]:
    """Up to ``cap`` bytes of the body and whether that is all of it: reading stops past the cap, so a worker
    never holds more than the cap and one piece."""
    body = bytearray()
    for chunk in _decoded_chunks(response):
        body += chunk
        if len(body) > cap:
            return bytes(body[:cap]), False
        if time.monotonic() > deadline:  # a fast, endless stream: every read is quick, the answer never ends
            raise httpx.ReadTimeout("the time limit passed while the body was still arriving")
    return bytes(body), True


def _retry_after(headers: httpx.Headers) -> float | None:
    value = headers.get("retry-after")
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None  # an HTTP date; the caller's own back-off applies


def _api_message(body: bytes) -> str:
    try:
        error = json.loads(body).get("error")
        message = error.get("message") if isinstance(error, dict) else error
    except (ValueError, RecursionError, AttributeError):
        message = None
    return str(message or body.decode("utf-8", "replace"))


def _storable(text: str) -> str:
    """``text`` as every database stores it: PostgreSQL refuses NUL characters, and no driver encodes a lone
    surrogate (JSON may spell one as \\ud800)."""
    return text.replace("\x00", "\ufffd").encode("utf-8", "replace").decode("utf-8")


def _token_count(usage: object, name: str) -> int | None:
    value = usage.get(name) if isinstance(usage, dict) else None
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= MAX_TOKEN_COUNT:
        return value
    return None


# Where providers report prompt-cache tokens, first found wins: OpenAI (and LiteLLM, vLLM) in prompt_tokens_details,
# Anthropic-style names at the top of usage (LiteLLM passes them on), DeepSeek's hit count.
CACHE_READ_FIELDS = (("prompt_tokens_details", "cached_tokens"), (None, "cache_read_input_tokens"),
                     (None, "prompt_cache_hit_tokens"))
CACHE_WRITE_FIELDS = (("prompt_tokens_details", "cache_write_tokens"), ("prompt_tokens_details", "cache_creation_tokens"),
                      (None, "cache_creation_input_tokens"))


def _first_count(usage: object, places: tuple[tuple[str | None, str], ...]) -> int | None:
    for part, name in places:
        found = _token_count(usage.get(part) if part and isinstance(usage, dict) else usage, name)
        if found is not None:
            return found
    return None


def count_call(annotator_number: int, status: int | str, attempt: int, completion: Completion | None) -> None:
    """Add one LLM request to its annotator's counters in Redis (``requests:<HTTP status>`` or ``requests:error``
    when no answer came, tokens in and out, ``retries`` for every attempt after the first), which /metrics reads:
    30 worker processes cannot share in-process counters. A statistic: Redis away must not cost the annotation."""
    fields = {f"requests:{status}": 1}
    if attempt > 1:
        fields["retries"] = 1
    if completion is not None:
        fields["tokens_in"] = completion.prompt_tokens or 0
        fields["tokens_out"] = completion.completion_tokens or 0
    try:
        pipe = get_redis().pipeline(transaction=False)
        for name, amount in fields.items():
            pipe.hincrby(counters_key(annotator_number), name, amount)
        pipe.execute()
    except redis.RedisError as exc:
        log.warning("LLM request not counted for annotator %s: %s", annotator_number, exc)


class OpenAICompatibleBackend:
    """Chat completions over HTTP: OpenAI, vLLM, Ollama, llama.cpp server, LiteLLM, Gemini's compatible API.

    Whatever the server sends, a call ends within the annotator's timeout, holds at most LLM_MAX_RESPONSE_BYTES of
    answer, and every message it leaves for staff is cut and never contains the API key."""

    def __init__(self, annotator: Annotator):
        self.number = annotator.number
        self.completion = annotator.request_mode == Annotator.RequestMode.COMPLETION
        self.url = annotator.base_url.rstrip("/") + ("/completions" if self.completion else "/chat/completions")
        self.model = annotator.model
        self.temperature = annotator.temperature
        self.max_tokens = annotator.max_tokens
        self.timeout = annotator.timeout_seconds
        self.logprobs = annotator.request_logprobs
        # Only encodings this backend inflates itself, within the cap.
        self.headers = {"Content-Type": "application/json", "Accept-Encoding": "gzip, deflate"}
        try:
            self.key = api_key_for(annotator)
        except ApiKeyUnavailable as exc:
            raise PermanentBackendError(str(exc)) from None
        if self.key:
            self.headers["Authorization"] = f"Bearer {self.key}"

    def payload(self, request: BackendRequest) -> dict:
        """The request body for ``request``: what this backend POSTs (a batch file would hold the same)."""
        payload = {"model": self.model, "temperature": self.temperature, "max_tokens": self.max_tokens}
        structured = request.answer_format
        if structured is not None:
            payload.update(structured.request_fields(completion=self.completion))
        if self.logprobs:  # the top alternatives too, as most servers send them only when asked for some
            payload.update({"logprobs": 5} if self.completion else {"logprobs": True, "top_logprobs": 5})
        if self.completion:
            # A base model continues the few-shot pattern: its answer ends with its line (a server that ignores a
            # schema in completion mode lets it run on into the next example). Our grammar ends the answer itself.
            ends_itself = structured is not None and structured.ends_itself
            return {**payload, "prompt": request.prompt, **({} if ends_itself else {"stop": ["\n"]})}
        return {**payload, "messages": [{"role": "user", "content": request.prompt}]}

    def complete(self, request: BackendRequest) -> Completion:
        reply = completion = None
        try:
            started = time.monotonic()
            reply = self._post(self.payload(request))
            completion = self._completion(reply, int((time.monotonic() - started) * 1000), request)
            return completion
        finally:
            count_call(self.number, reply.status if reply else "error", request.attempt, completion)

    def _completion(self, reply: _Reply, latency: int, request: BackendRequest) -> Completion:
        self._raise_for_status(reply, request.answer_format)
        if not reply.complete:
            raise TransientBackendError(f"response larger than {settings.LLM_MAX_RESPONSE_BYTES} bytes; cut")
        return self.completion_of(self._document(reply.body), latency, reply.body)

    def completion_of(self, document: dict, latency: int, body: bytes) -> Completion:
        """The answer in a server's (chat or text) completion document, whose raw ``body`` errors quote."""
        usage = document.get("usage")
        model = document.get("model")
        text, refused = self._answer_text(document, body)
        logprobs = token_logprobs(document["choices"][0], completion=self.completion) if self.logprobs else None
        return Completion(self._clean(text),
                          self._clean(model)[:MODEL_CHARS] if isinstance(model, str) and model else self.model,
                          latency, _token_count(usage, "prompt_tokens"), _token_count(usage, "completion_tokens"),
                          _first_count(usage, CACHE_READ_FIELDS), _first_count(usage, CACHE_WRITE_FIELDS), refused,
                          logprobs)

    def _post(self, payload: dict) -> _Reply:
        try:
            with time_limit(self.timeout) as deadline, _http_client().stream(
                    "POST", self.url, json=payload, headers=self.headers, timeout=self.timeout) as response:
                body, complete = _read_capped(response, deadline, settings.LLM_MAX_RESPONSE_BYTES)
                return _Reply(response.status_code, response.headers, body, complete)
        except OutboundRefused as exc:
            raise PermanentBackendError(f"the outbound policy refuses {exc}") from exc
        except httpx.TimeoutException as exc:
            raise TransientBackendError(f"no complete answer within {self.timeout:g} s") from exc
        except httpx.TransportError as exc:
            raise TransientBackendError(self._shown(f"connection failed: {exc}")) from exc
        except zlib.error as exc:
            raise TransientBackendError(f"unreadable answer: the compressed body is corrupt ({exc})") from exc

    def _raise_for_status(self, reply: _Reply, structured: AnswerFormat | None) -> None:
        status = reply.status
        if status < 300:
            return
        if status < 400:
            location = reply.headers.get("location", "(no Location header)")
            raise PermanentBackendError(self._shown(
                f"HTTP {status}: redirects are not followed; set the base URL to the final address ({location})"))
        message = self._shown(f"HTTP {status}: {_api_message(reply.body)}")
        # llama-cpp-python answers a response_format it does not know with a 500 that names it: no use retrying.
        if structured is not None and status in (400, 422, 500, 501) and structured.names_the_parameter(message):
            raise StructuredOutputRefused(self._shown(
                f"the server refuses structured output '{structured.mode}' (sent as {structured.sent_as}); choose "
                f"another structured mode, or none, or allow the fallback to free text. {message}"))
        if status in (408, 409, 425, 429) or status >= 500:
            raise TransientBackendError(message, _retry_after(reply.headers))
        raise PermanentBackendError(message)

    def _document(self, body: bytes) -> dict:
        try:
            document = json.loads(body)
        except (ValueError, RecursionError) as exc:  # UnicodeDecodeError is a ValueError
            raise self._unreadable(f"not JSON: {exc}", body) from None
        if not isinstance(document, dict):
            raise self._unreadable(f"the JSON is {type(document).__name__}, not an object", body)
        return document

    def _answer_text(self, document: dict, body: bytes) -> tuple[str, bool]:
        """The answer's text, and whether it is the model's refusal instead."""
        choices = document.get("choices")
        if not isinstance(choices, list) or not choices:
            raise self._unreadable("no choices", body)
        choice = choices[0]
        if not isinstance(choice, dict):
            raise self._unreadable("choices[0] is not an object", body)
        if self.completion:
            field, text = "choices[0].text", choice.get("text")
        else:
            message = choice.get("message")
            if not isinstance(message, dict):
                raise self._unreadable("choices[0].message is missing or not an object", body)
            field, text = "choices[0].message.content", message.get("content")
            refusal = message.get("refusal")
            if text is None and isinstance(refusal, str) and refusal:  # structured outputs: the model declined
                return refusal, True
        if text is None:
            return "", False  # the model said nothing (every token spent thinking): an empty, malformed answer
        if not isinstance(text, str):
            raise self._unreadable(f"{field} is {type(text).__name__}, not text", body)
        return text, False

    def _unreadable(self, problem: str, body: bytes) -> TransientBackendError:
        return TransientBackendError(self._shown(f"unreadable answer ({problem}): {body.decode('utf-8', 'replace')}"))

    def _clean(self, text: str) -> str:
        """``text`` from the server without the API key (some servers echo it), storable."""
        if self.key:
            text = text.replace(self.key, "[the API key]")
        return _storable(text)

    def _shown(self, message: str) -> str:
        """A message for staff: no API key (removed before cutting, so no part of it stays), one line, cut."""
        return " ".join(self._clean(message).split())[:ERROR_BODY_CHARS]


_BACKENDS = {Annotator.Backend.BUILTIN: BuiltinBackend, Annotator.Backend.OPENAI_COMPATIBLE: OpenAICompatibleBackend,
             Annotator.Backend.TRAINED: TrainedBackend}


def backend_for(annotator: Annotator) -> Backend:
    return _BACKENDS[annotator.backend](annotator)
