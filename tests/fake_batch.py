"""Real HTTP servers on loopback that speak the two batch protocols, so the real batch client runs.

One ``FakeBatchAPI`` serves both: OpenAI-style (``/v1/files``, ``/v1/batches``, ``/v1/files/{id}/content``) and
Anthropic-style Message Batches (``/v1/messages/batches``, its ``/results``). A test scripts how batches end:
``complete_after`` seconds (``hold`` keeps them in progress until cleared), ``fail`` (custom_ids answered with an
error), ``expire`` (the batch expires with only ``expire_answers`` answered), ``foreign`` (an extra result naming
nothing that was asked), ``create_delay`` (the create call is recorded at once and answered this much later: a
client killed meanwhile never learns the id), ``down`` (every POST fails with 503). A cancel ends a batch with
nothing answered. It also answers live chat requests (``/v1/chat/completions``) the same way, so a benchmark compares
both modes against one server. ``creates`` counts create calls; ``requests`` every request.
"""

from __future__ import annotations

import email.parser
import itertools
import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler

from tests.fake_llm import _QuietServer


def _first_user_text(body: dict) -> str:
    if "prompt" in body:
        return str(body["prompt"])
    return str(body["messages"][-1]["content"])


@dataclass
class FakeBatch:
    id: str
    protocol: str
    requests: list[dict]  # {"custom_id", "body"}
    created: float
    metadata: dict
    status: str = "in_progress"
    ended_at: float | None = None


@dataclass
class FakeBatchAPI:
    content_for: Callable[[str], str] = lambda prompt: "<<LEVEL_1>>"
    usage: dict | None = None  # every answer's usage; None: a token per four characters of the prompt, and 12
    complete_after: float = 0.0
    hold: threading.Event = field(default_factory=threading.Event)  # set: batches stay in progress
    fail: Callable[[str], bool] = lambda custom_id: False
    expire: bool = False
    expire_answers: int = 0
    foreign: bool = False
    create_delay: float = 0.0
    down: bool = False  # every POST answers 503
    live_latency: float = 0.0  # the live chat route (/v1/chat/completions) answers after this
    arrived_at: list[float] = field(default_factory=list)  # every request's arrival (time.monotonic())
    creates: int = 0
    batches: dict[str, FakeBatch] = field(default_factory=dict)
    files: dict[str, bytes] = field(default_factory=dict)
    requests: list[tuple[str, str]] = field(default_factory=list)  # (method, path)
    lock: threading.Lock = field(default_factory=threading.Lock)
    ids: Iterator[int] = field(default_factory=lambda: itertools.count(1))
    url: str = ""

    def usage_of(self, body: dict) -> dict:
        if self.usage is not None:
            return self.usage
        return {"prompt_tokens": len(_first_user_text(body)) // 4 + 1, "completion_tokens": 12}

    def create(self, protocol: str, requests: list[dict], metadata: dict) -> FakeBatch:
        with self.lock:
            self.creates += 1
            number = next(self.ids)
            batch = FakeBatch(f"{'msgbatch' if protocol == 'anthropic' else 'batch'}_{number}", protocol, requests,
                              time.time(), metadata)
            self.batches[batch.id] = batch
        return batch

    def advance(self, batch: FakeBatch) -> FakeBatch:
        """Ends the batch once its time has come (and nothing holds it)."""
        if batch.status == "in_progress" and not self.hold.is_set() and time.time() - batch.created >= self.complete_after:
            batch.status, batch.ended_at = ("expired" if self.expire else "completed"), time.time()
        return batch

    def answers(self, batch: FakeBatch) -> Iterator[tuple[str, dict | None, str]]:
        """(custom_id, request body, error) of each result; body None with an error."""
        for index, request in enumerate(batch.requests):
            if batch.status == "cancelled":
                yield request["custom_id"], None, "batch_cancelled"
            elif self.expire and index >= self.expire_answers:
                yield request["custom_id"], None, "batch_expired"
            elif self.fail(request["custom_id"]):
                yield request["custom_id"], None, "server_error"
            else:
                yield request["custom_id"], request["body"], ""
        if self.foreign:
            yield "r999999-s999999-nowhere", batch.requests[0]["body"], ""

    def openai_lines(self, batch: FakeBatch, errors: bool) -> bytes:
        lines = []
        for custom_id, body, error in self.answers(batch):
            if bool(error) != errors:
                continue
            if error:
                lines.append({"id": f"req_{custom_id}", "custom_id": custom_id, "response": None,
                              "error": {"code": error, "message": f"scripted {error}"}})
                continue
            text = body.get("prompt") is not None
            choice = {"text": self.content_for(_first_user_text(body))} if text else {
                "message": {"role": "assistant", "content": self.content_for(_first_user_text(body))}}
            lines.append({"id": f"req_{custom_id}", "custom_id": custom_id, "error": None, "response": {
                "status_code": 200, "body": {"model": body.get("model", "fake"), "choices": [choice],
                                             "usage": self.usage_of(body)}}})
        return "\n".join(json.dumps(line) for line in lines).encode()

    def anthropic_lines(self, batch: FakeBatch) -> bytes:
        lines = []
        for custom_id, params, error in self.answers(batch):
            if error:
                kind = {"batch_expired": "expired", "batch_cancelled": "canceled"}.get(error, "errored")
                lines.append({"custom_id": custom_id, "result": {"type": kind}})
                continue
            lines.append({"custom_id": custom_id, "result": {"type": "succeeded", "message": {
                "model": params["model"], "content": [{"type": "text", "text": self.content_for(
                    _first_user_text(params))}],
                "usage": {"input_tokens": self.usage_of(params)["prompt_tokens"],
                          "output_tokens": self.usage_of(params)["completion_tokens"]}}}})
        return "\n".join(json.dumps(line) for line in lines).encode()

    def openai_document(self, batch: FakeBatch) -> dict:
        ended = batch.status != "in_progress"
        answered = sum(1 for _, body, _ in self.answers(batch) if body is not None) if ended else 0
        document = {"id": batch.id, "object": "batch", "status": batch.status, "metadata": batch.metadata,
                    "created_at": int(batch.created), "output_file_id": None, "error_file_id": None,
                    "request_counts": {"total": len(batch.requests), "completed": answered,
                                       "failed": len(batch.requests) - answered if ended else 0}}
        if ended:
            self.files[f"{batch.id}-out"] = self.openai_lines(batch, errors=False)
            self.files[f"{batch.id}-err"] = self.openai_lines(batch, errors=True)
            document.update(output_file_id=f"{batch.id}-out", error_file_id=f"{batch.id}-err")
        return document

    def anthropic_document(self, batch: FakeBatch) -> dict:
        ended = batch.status != "in_progress"
        return {"id": batch.id, "type": "message_batch", "processing_status": "ended" if ended else "in_progress",
                "created_at": datetime.fromtimestamp(batch.created, UTC).isoformat(),
                "request_counts": {"processing": 0 if ended else len(batch.requests),
                                   "succeeded": len(batch.requests) if ended else 0, "errored": 0, "canceled": 0,
                                   "expired": 0},
                "results_url": f"{self.url}/messages/batches/{batch.id}/results" if ended else None}


def _handler(fake: FakeBatchAPI) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args) -> None:
            pass

        def _json(self, document: object, status: int = 200) -> None:
            self._send(json.dumps(document).encode(), status, "application/json")

        def _send(self, data: bytes, status: int = 200, kind: str = "application/jsonl") -> None:
            self.send_response(status)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _body(self) -> bytes:
            return self.rfile.read(int(self.headers.get("Content-Length", 0)))

        def do_POST(self) -> None:
            raw = self._body()
            path = self.path.split("?")[0]
            with fake.lock:
                fake.requests.append(("POST", path))
                fake.arrived_at.append(time.monotonic())
            if fake.down:
                self._json({"error": {"message": "scripted outage"}}, 503)
                return
            if path == "/v1/files":
                message = email.parser.BytesParser().parsebytes(
                    f"Content-Type: {self.headers['Content-Type']}\r\n\r\n".encode() + raw)
                parts = {part.get_param("name", header="content-disposition"): part.get_payload(decode=True)
                         for part in message.get_payload()}
                if parts.get("purpose") != b"batch":
                    self._json({"error": {"message": "purpose must be batch"}}, 400)
                    return
                with fake.lock:
                    file_id = f"file_{next(fake.ids)}"
                    fake.files[file_id] = parts["file"]
                self._json({"id": file_id, "object": "file", "purpose": "batch"})
                return
            body = json.loads(raw or b"{}")
            parts = path.strip("/").split("/")
            if parts[-1] == "cancel" and parts[-2] in fake.batches:
                batch = fake.batches[parts[-2]]
                with fake.lock:
                    batch.status, batch.ended_at = "cancelled", time.time()
                self._json(fake.openai_document(batch) if batch.protocol == "openai" else
                           fake.anthropic_document(batch))
            elif path == "/v1/chat/completions":
                time.sleep(fake.live_latency)
                self._json({"model": body.get("model", "fake"), "usage": fake.usage_of(body), "choices": [
                    {"message": {"role": "assistant", "content": fake.content_for(_first_user_text(body))}}]})
            elif path == "/v1/batches":
                lines = [json.loads(line) for line in fake.files[body["input_file_id"]].splitlines() if line.strip()]
                batch = fake.create("openai", [{"custom_id": line["custom_id"], "body": line["body"]}
                                               for line in lines], body.get("metadata") or {})
                time.sleep(fake.create_delay)
                self._json(fake.openai_document(batch))
            elif path == "/v1/messages/batches":
                batch = fake.create("anthropic", [{"custom_id": r["custom_id"], "body": r["params"]}
                                                  for r in body["requests"]], {})
                time.sleep(fake.create_delay)
                self._json(fake.anthropic_document(batch))
            else:
                self._json({"error": {"message": f"no route {path}"}}, 404)

        def do_GET(self) -> None:
            path = self.path.split("?")[0]
            with fake.lock:
                fake.requests.append(("GET", path))
                fake.arrived_at.append(time.monotonic())
                batches = [fake.advance(batch) for batch in fake.batches.values()]
            parts = path.strip("/").split("/")
            if path == "/v1/batches":
                data = [fake.openai_document(b) for b in reversed(batches) if b.protocol == "openai"]
                self._json({"object": "list", "data": data, "has_more": False})
            elif path == "/v1/messages/batches":
                data = [fake.anthropic_document(b) for b in reversed(batches) if b.protocol == "anthropic"]
                self._json({"data": data, "has_more": False})
            elif parts[:2] == ["v1", "batches"] and parts[2] in fake.batches:
                self._json(fake.openai_document(fake.batches[parts[2]]))
            elif parts[:3] == ["v1", "messages", "batches"] and parts[3] in fake.batches:
                batch = fake.batches[parts[3]]
                if parts[4:] == ["results"]:
                    self._send(fake.anthropic_lines(batch))
                else:
                    self._json(fake.anthropic_document(batch))
            elif parts[:2] == ["v1", "files"] and parts[3:] == ["content"] and parts[2] in fake.files:
                self._send(fake.files[parts[2]])
            else:
                self._json({"error": {"message": f"no route {path}"}}, 404)

    return Handler


@contextmanager
def serving_fake_batch_api(**options) -> Iterator[FakeBatchAPI]:
    fake = FakeBatchAPI(**options)
    server = _QuietServer(("127.0.0.1", 0), _handler(fake))
    server.daemon_threads = True
    fake.url = f"http://127.0.0.1:{server.server_address[1]}/v1"
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield fake
    finally:
        server.shutdown()
        server.server_close()
