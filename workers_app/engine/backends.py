"""The LLM backends behind one small interface: ``backend_for(annotator).complete(request)``."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from functools import cache
from typing import Protocol

import httpx

from workers_app.models import Annotator

from .builtin import BUILTIN_MODEL, builtin_answer

ERROR_BODY_CHARS = 300


@dataclass(frozen=True)
class BackendRequest:
    prompt: str
    text: str
    domain: str
    codes: tuple[str, ...]
    attempt: int


@dataclass(frozen=True)
class Completion:
    text: str
    model: str
    latency_ms: int
    prompt_tokens: int | None = None
    completion_tokens: int | None = None


class TransientBackendError(Exception):
    """Worth retrying: 429, 5xx, a timeout or a broken connection."""

    def __init__(self, message: str, retry_after: float | None = None):
        super().__init__(message)
        self.retry_after = retry_after


class PermanentBackendError(Exception):
    """Retrying will not help (bad key, bad request, missing configuration): stop calling."""


class Backend(Protocol):
    def complete(self, request: BackendRequest) -> Completion: ...


class BuiltinBackend:
    """The offline keyword baseline; latency and malformed rate are knobs for demos and benchmarks."""

    def __init__(self, annotator: Annotator):
        self.number = annotator.number
        self.latency = annotator.builtin_latency_ms / 1000
        self.malformed_rate = annotator.builtin_malformed_rate

    def complete(self, request: BackendRequest) -> Completion:
        started = time.monotonic()
        if self.latency:
            time.sleep(self.latency)
        text = builtin_answer(request.text, domain=request.domain, codes=request.codes,
                              malformed_rate=self.malformed_rate, salt=f"{self.number}:{request.attempt}")
        return Completion(text, BUILTIN_MODEL, int((time.monotonic() - started) * 1000))


@cache
def _http_client() -> httpx.Client:
    # One pooled client per process, shared by the worker's threads (httpx.Client is thread-safe).
    return httpx.Client(limits=httpx.Limits(max_connections=64, max_keepalive_connections=32))


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("retry-after")
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None  # an HTTP date; the caller's own back-off applies


def _api_message(response: httpx.Response) -> str:
    try:
        error = response.json().get("error")
        message = error.get("message") if isinstance(error, dict) else error
    except (ValueError, AttributeError):
        message = None
    return str(message or response.text)[:ERROR_BODY_CHARS]


class OpenAICompatibleBackend:
    """Chat completions over HTTP: OpenAI, vLLM, Ollama, llama.cpp server, LiteLLM, Gemini's compatible API."""

    def __init__(self, annotator: Annotator):
        self.completion = annotator.request_mode == Annotator.RequestMode.COMPLETION
        self.url = annotator.base_url.rstrip("/") + ("/completions" if self.completion else "/chat/completions")
        self.model = annotator.model
        self.temperature = annotator.temperature
        self.max_tokens = annotator.max_tokens
        self.timeout = annotator.timeout_seconds
        self.headers = {"Content-Type": "application/json"}
        self.key = ""
        if annotator.api_key_env:
            key = os.environ.get(annotator.api_key_env)
            if not key:
                raise PermanentBackendError(
                    f"the environment variable {annotator.api_key_env} (API key of {annotator}) is not set")
            self.headers["Authorization"] = f"Bearer {key}"
            self.key = key

    def _payload(self, request: BackendRequest) -> dict:
        payload = {"model": self.model, "temperature": self.temperature, "max_tokens": self.max_tokens}
        if self.completion:
            # A base model continues the few-shot pattern; the answer ends with its line.
            return {**payload, "prompt": request.prompt, "stop": ["\n"]}
        return {**payload, "messages": [{"role": "user", "content": request.prompt}]}

    def complete(self, request: BackendRequest) -> Completion:
        payload = self._payload(request)
        started = time.monotonic()
        try:
            response = _http_client().post(self.url, json=payload, headers=self.headers, timeout=self.timeout)
        except httpx.TimeoutException as exc:
            raise TransientBackendError(f"timed out after {self.timeout} s ({exc.__class__.__name__})") from exc
        except httpx.TransportError as exc:
            raise TransientBackendError(f"connection failed: {exc}") from exc
        latency = int((time.monotonic() - started) * 1000)
        self._raise_for_status(response)
        try:
            body = response.json()
            choice = body["choices"][0]
            text = (choice.get("text") if self.completion else choice["message"].get("content")) or ""
        except (ValueError, KeyError, IndexError, TypeError, AttributeError) as exc:
            raise TransientBackendError(f"unreadable response body: {response.text[:ERROR_BODY_CHARS]}") from exc
        usage = body.get("usage") or {}
        return Completion(text, body.get("model") or self.model, latency,
                          usage.get("prompt_tokens"), usage.get("completion_tokens"))

    def _raise_for_status(self, response: httpx.Response) -> None:
        status = response.status_code
        if status < 400:
            return
        message = f"HTTP {status}: {_api_message(response)}"
        if self.key:
            message = message.replace(self.key, "[the API key]")  # some APIs echo the key; it is never stored
        if status in (408, 409, 425, 429) or status >= 500:
            raise TransientBackendError(message, _retry_after(response))
        raise PermanentBackendError(message)


_BACKENDS = {Annotator.Backend.BUILTIN: BuiltinBackend, Annotator.Backend.OPENAI_COMPATIBLE: OpenAICompatibleBackend}


def backend_for(annotator: Annotator) -> Backend:
    return _BACKENDS[annotator.backend](annotator)
