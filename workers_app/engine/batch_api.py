"""Providers' batch APIs behind one interface: submit requests under our ``ref``, find a batch by that ref after a
kill, read its status, and read its results.

- OpenAI-style (OpenAI, Azure OpenAI, Groq, Together): upload a JSONL file (``purpose=batch``) to ``/files``, create
  the batch at ``/batches`` with our ref in its metadata, poll ``/batches/{id}``, read the output and error files
  from ``/files/{id}/content``.
- Anthropic-style Message Batches: create at ``/messages/batches``, poll it, stream its ``results_url``. A Message
  Batch has no metadata: after a kill between the create call and its record, the batch is found as the one created
  since the record with the same number of requests that no other record names.

Requests are built by the live backend (``OpenAICompatibleBackend.payload``) and answers read by it
(``completion_of``), so a batch asks exactly what a live call would and its answers are read the same way.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

import httpx

from annotation_site.outbound import OutboundRefused, time_limit
from workers_app.models import Annotator

from .backends import (
    BackendRequest,
    Completion,
    OpenAICompatibleBackend,
    PermanentBackendError,
    TransientBackendError,
    _http_client,
    _read_capped,
    _Reply,
    _token_count,
)

ANTHROPIC_VERSION = "2023-06-01"
COMPLETION_WINDOW = "24h"
CALL_SECONDS = 120.0  # one call of the batch API (an upload, a create, a poll); results stream for longer
RESULTS_SECONDS = 1800.0
MAX_CONTROL_BYTES = 16 * 1024 * 1024  # a batch's status document or a list of batches
LIST_PAGES = 20


@dataclass(frozen=True)
class BatchStatus:
    status: str  # the provider's word for it
    ended: bool
    counts: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class BatchResult:
    """One request's result: its answer, or why it has none."""

    custom_id: str
    completion: Completion | None
    error: str = ""


class BatchClient(Protocol):
    def submit(self, ref: str, requests: list[tuple[str, BackendRequest]]) -> str: ...

    def find(self, ref: str, *, created_since: datetime, count: int, known: set[str]) -> str | None: ...

    def status(self, provider_id: str) -> BatchStatus: ...

    def results(self, provider_id: str) -> Iterator[BatchResult]: ...

    def cancel(self, provider_id: str) -> None: ...


class _Client:
    """What both protocols share: the live backend's settings, key and error handling."""

    def __init__(self, annotator: Annotator):
        self.live = OpenAICompatibleBackend(annotator)
        self.base = annotator.base_url.rstrip("/")

    def headers(self) -> dict[str, str]:
        return {"Accept-Encoding": self.live.headers["Accept-Encoding"],
                **({"Authorization": self.live.headers["Authorization"]} if self.live.key else {})}

    def call(self, method: str, path: str, **options) -> dict:
        """One call of the batch API; its JSON answer."""
        url = path if path.startswith(("http://", "https://")) else self.base + path
        try:
            with time_limit(CALL_SECONDS) as deadline, _http_client().stream(
                    method, url, headers=self.headers(), timeout=CALL_SECONDS, **options) as response:
                body, complete = _read_capped(response, deadline, MAX_CONTROL_BYTES)
                reply = _Reply(response.status_code, response.headers, body, complete)
        except OutboundRefused as exc:
            raise PermanentBackendError(f"the outbound policy refuses {exc}") from exc
        except (httpx.TimeoutException, httpx.TransportError) as exc:
            raise TransientBackendError(self.live._shown(f"batch API {method} {path}: {exc!r}")) from exc
        self.live._raise_for_status(reply, None)
        if not reply.complete:
            raise TransientBackendError(f"batch API {method} {path}: answer larger than {MAX_CONTROL_BYTES} bytes")
        return self.live._document(reply.body)

    def listed(self, path: str, cursor: str) -> Iterator[dict]:
        """The provider's batches, newest first, page by page (at most LIST_PAGES pages of 100)."""
        after = None
        for _ in range(LIST_PAGES):
            page = self.call("GET", path, params={"limit": 100, **({cursor: after} if after else {})})
            data = page.get("data") or []
            yield from data
            if not page.get("has_more") or not data:
                return
            after = page.get("last_id") or data[-1]["id"]

    def lines(self, url: str) -> Iterator[dict]:
        """A JSONL document, a line at a time (a results file may be far larger than any one answer)."""
        try:
            with time_limit(RESULTS_SECONDS), _http_client().stream("GET", url, headers=self.headers(),
                                                                    timeout=CALL_SECONDS) as response:
                if response.status_code >= 300:
                    response.read()
                    self.live._raise_for_status(_Reply(response.status_code, response.headers,
                                                       response.content[:4096], True), None)
                for line in response.iter_lines():
                    if line.strip():
                        try:
                            yield json.loads(line)
                        except ValueError:
                            continue  # not a result: it cannot name a request
        except OutboundRefused as exc:
            raise PermanentBackendError(f"the outbound policy refuses {exc}") from exc
        except (httpx.TimeoutException, httpx.TransportError) as exc:
            raise TransientBackendError(self.live._shown(f"batch results {url}: {exc!r}")) from exc


class OpenAIBatchClient(_Client):
    ENDED = {"completed", "failed", "expired", "cancelled"}

    def endpoint(self) -> str:
        return "/v1/completions" if self.live.completion else "/v1/chat/completions"

    def submit(self, ref: str, requests: list[tuple[str, BackendRequest]]) -> str:
        lines = [json.dumps({"custom_id": custom_id, "method": "POST", "url": self.endpoint(),
                             "body": self.live.payload(request)}) for custom_id, request in requests]
        uploaded = self.call("POST", "/files", data={"purpose": "batch"},
                             files={"file": (f"{ref}.jsonl", "\n".join(lines).encode(), "application/jsonl")})
        created = self.call("POST", "/batches", json={
            "input_file_id": uploaded["id"], "endpoint": self.endpoint(), "completion_window": COMPLETION_WINDOW,
            "metadata": {"ref": ref}})
        return str(created["id"])

    def find(self, ref: str, *, created_since: datetime, count: int, known: set[str]) -> str | None:
        return next((str(batch["id"]) for batch in self.listed("/batches", "after")
                     if (batch.get("metadata") or {}).get("ref") == ref), None)

    def status(self, provider_id: str) -> BatchStatus:
        batch = self.call("GET", f"/batches/{provider_id}")
        counts = batch.get("request_counts") or {}
        return BatchStatus(str(batch.get("status")), batch.get("status") in self.ENDED,
                           {name: int(counts.get(name) or 0) for name in ("total", "completed", "failed")})

    def cancel(self, provider_id: str) -> None:
        self.call("POST", f"/batches/{provider_id}/cancel")

    def results(self, provider_id: str) -> Iterator[BatchResult]:
        batch = self.call("GET", f"/batches/{provider_id}")
        for file_field in ("output_file_id", "error_file_id"):
            if batch.get(file_field):
                for line in self.lines(f"{self.base}/files/{batch[file_field]}/content"):
                    yield self._result(line)

    def _result(self, line: dict) -> BatchResult:
        custom_id = str(line.get("custom_id", ""))
        response = line.get("response") or {}
        body = response.get("body")
        if line.get("error") or response.get("status_code") != 200 or not isinstance(body, dict):
            error = line.get("error") or (body.get("error") if isinstance(body, dict) else body)
            return BatchResult(custom_id, None, self.live._shown(f"{response.get('status_code', '')} {error}"))
        try:
            return BatchResult(custom_id, self.live.completion_of(body, 0, json.dumps(body).encode()))
        except TransientBackendError as exc:
            return BatchResult(custom_id, None, str(exc))


class AnthropicBatchClient(_Client):
    def headers(self) -> dict[str, str]:
        return {"Accept-Encoding": self.live.headers["Accept-Encoding"], "anthropic-version": ANTHROPIC_VERSION,
                **({"x-api-key": self.live.key} if self.live.key else {})}

    def params(self, request: BackendRequest) -> dict:
        return {"model": self.live.model, "max_tokens": self.live.max_tokens, "temperature": self.live.temperature,
                "messages": [{"role": "user", "content": request.prompt}]}

    def submit(self, ref: str, requests: list[tuple[str, BackendRequest]]) -> str:
        created = self.call("POST", "/messages/batches", json={
            "requests": [{"custom_id": custom_id, "params": self.params(request)} for custom_id, request in requests]})
        return str(created["id"])

    def find(self, ref: str, *, created_since: datetime, count: int, known: set[str]) -> str | None:
        """No metadata here: the batch created since our record with as many requests that no record names."""
        for batch in self.listed("/messages/batches", "after_id"):
            created = datetime.fromisoformat(str(batch.get("created_at")))
            total = sum(int(n or 0) for n in (batch.get("request_counts") or {}).values())
            if created >= created_since and total == count and batch["id"] not in known:
                return str(batch["id"])
        return None

    def status(self, provider_id: str) -> BatchStatus:
        batch = self.call("GET", f"/messages/batches/{provider_id}")
        counts = {name: int(n or 0) for name, n in (batch.get("request_counts") or {}).items()}
        return BatchStatus(str(batch.get("processing_status")), batch.get("processing_status") == "ended", counts)

    def cancel(self, provider_id: str) -> None:
        self.call("POST", f"/messages/batches/{provider_id}/cancel")

    def results(self, provider_id: str) -> Iterator[BatchResult]:
        batch = self.call("GET", f"/messages/batches/{provider_id}")
        if batch.get("results_url"):
            for line in self.lines(str(batch["results_url"])):
                yield self._result(line)

    def _result(self, line: dict) -> BatchResult:
        custom_id = str(line.get("custom_id", ""))
        result = line.get("result") or {}
        message = result.get("message")
        if result.get("type") != "succeeded" or not isinstance(message, dict):
            return BatchResult(custom_id, None, self.live._shown(f"{result.get('type')}: {result.get('error', '')}"))
        blocks = message.get("content") if isinstance(message.get("content"), list) else []
        text = "".join(str(b.get("text", "")) for b in blocks if isinstance(b, dict) and b.get("type") == "text")
        usage = message.get("usage")
        model = message.get("model") if isinstance(message.get("model"), str) else self.live.model
        return BatchResult(custom_id, Completion(
            self.live._clean(text), self.live._clean(model)[:200], 0, _token_count(usage, "input_tokens"),
            _token_count(usage, "output_tokens"), _token_count(usage, "cache_read_input_tokens"),
            _token_count(usage, "cache_creation_input_tokens")))


def batch_client_for(annotator: Annotator) -> BatchClient:
    if annotator.batch_protocol == Annotator.BatchProtocol.ANTHROPIC:
        return AnthropicBatchClient(annotator)
    return OpenAIBatchClient(annotator)

