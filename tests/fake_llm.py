"""A real OpenAI-compatible HTTP server on loopback whose answers a test scripts, so the real client runs.

With ``enforce_schema`` it also acts like a server that constrains decoding: a request that carries a JSON schema
(``response_format`` json_schema, or json_object with a schema, or llama.cpp's ``json_schema``) gets the scripted
answer only if that answer is valid under the schema, and otherwise the valid answer a constrained decoder would
have been forced to (every answer it sends validates). It checks the schema first, and OpenAI's strict-mode rules
when ``strict`` is set, refusing a bad one with 400 as OpenAI does. ``refuse`` names request fields it refuses, with
``refusal_status`` (llama-cpp-python answers a response_format it does not know with a 500 that names it).
"""

from __future__ import annotations

import collections
import json
import math
import socket
import struct
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError


@dataclass
class Reply:
    status: int = 200
    content: object = "Final answer: <<LEVEL_1>>"  # any JSON value: a misbehaving server sends null or a number
    retry_after: float | None = None
    delay: float = 0.0
    error: str = ""
    usage: dict | None = None  # instead of {"prompt_tokens": 100, "completion_tokens": 12}
    logprobs: object = None  # the choice's "logprobs" as it is sent (see chat_logprobs / completion_logprobs)
    # Misbehaviour, for the hostile tests:
    body: bytes | None = None  # sent as it is instead of the JSON answer
    headers: dict = field(default_factory=dict)
    content_length: int | None = None  # a lying Content-Length (the connection closes after the body)
    drip: float = 0.0  # seconds between single bytes of the body
    drip_head: bool = False  # drip the status line and headers too
    http10: bool = False  # HTTP/1.0 without Content-Length: the body ends when the connection closes
    reset_after: int | None = None  # send this many bytes of the body, then reset the connection


@dataclass
class FakeLLM:
    """Replies come from ``script`` in order, then ``default`` forever (its content from ``content_for``, if set,
    so that one server can answer every domain's prompt; or the whole reply from ``reply_for``)."""

    default: Reply = field(default_factory=Reply)
    script: collections.deque = field(default_factory=collections.deque)
    requests: list[dict] = field(default_factory=list)
    per_key_rpm: int | None = None  # like a real API: 429 beyond this many requests per rolling window
    window_seconds: float = 60.0  # that rolling window; a short one keeps tests of it fast
    arrivals: dict = field(default_factory=lambda: collections.defaultdict(collections.deque))
    # Every request's arrival and those refused by the limit, by Authorization header, for exact window counts.
    arrived_at: dict = field(default_factory=lambda: collections.defaultdict(list))
    limited_at: dict = field(default_factory=lambda: collections.defaultdict(list))
    content_for: Callable[[dict], object] | None = None
    reply_for: Callable[[dict], Reply] | None = None  # the whole default reply from the request, instead
    lock: threading.Lock = field(default_factory=threading.Lock)
    url: str = ""
    statuses: collections.Counter = field(default_factory=collections.Counter)
    accepted_at: list[float] = field(default_factory=list)
    enforce_schema: bool = False
    refuse: tuple[str, ...] = ()  # request fields this server refuses, e.g. ("response_format",)
    refusal_status: int = 400

    def next_reply(self, auth: str, body: dict | None = None) -> Reply:
        with self.lock:
            now = time.monotonic()
            self.arrived_at[auth].append(now)
            if self.per_key_rpm is not None:
                window = self.arrivals[auth]
                while window and window[0] <= now - self.window_seconds:
                    window.popleft()
                if len(window) >= self.per_key_rpm:
                    self.limited_at[auth].append(now)
                    # Whole seconds, rounded up, as real APIs send it: never an invitation to come back too early.
                    wait = math.ceil(window[0] + self.window_seconds - now)
                    return Reply(status=429, retry_after=wait, error="rate limit exceeded")
                window.append(now)
            refused = next((name for name in self.refuse if name in (body or {})), None)
            if refused is not None:
                return Reply(status=self.refusal_status, error=f"Unrecognized request argument supplied: {refused}")
            if self.script:
                reply = self.script.popleft()
            elif self.reply_for is not None:
                reply = self.reply_for(body or {})
            elif self.content_for is not None:
                reply = replace(self.default, content=self.content_for(body or {}))
            else:
                reply = self.default
            return self._constrained(reply, body or {}) if self.enforce_schema else reply

    def _constrained(self, reply: Reply, body: dict) -> Reply:
        schema, strict = requested_schema(body)
        if schema is None or reply.status != 200:
            return reply
        problem = schema_problem(schema, strict)
        if problem:
            return Reply(status=400, error=f"Invalid schema for response_format: {problem}")
        return replace(reply, content=constrained(schema, reply.content))


def requested_schema(body: dict) -> tuple[dict | None, bool]:
    """The JSON schema a request asks the answer to follow (None: none), and whether strict mode is on."""
    response_format = body.get("response_format")
    if isinstance(response_format, dict):
        wrapper = response_format.get("json_schema")
        if response_format.get("type") == "json_schema" and isinstance(wrapper, dict):
            return wrapper.get("schema"), bool(wrapper.get("strict"))
        if response_format.get("type") == "json_object" and isinstance(response_format.get("schema"), dict):
            return response_format["schema"], False
    return (body["json_schema"], False) if isinstance(body.get("json_schema"), dict) else (None, False)


def _strict_problem(schema: object, where: str = "") -> str:
    """OpenAI's strict mode: every object lists all its properties as required and allows no others."""
    if isinstance(schema, list):
        return next((p for index, item in enumerate(schema) if (p := _strict_problem(item, f"{where}[{index}]"))), "")
    if not isinstance(schema, dict):
        return ""
    if schema.get("type") == "object" and (schema.get("additionalProperties") is not False
                                            or set(schema.get("required", [])) != set(schema.get("properties", {}))):
        return f"In context={where or 'root'}, strict mode needs additionalProperties false and every key required"
    return next((p for key, value in schema.items() if (p := _strict_problem(value, f"{where}.{key}"))), "")


def schema_problem(schema: object, strict: bool) -> str:
    if not isinstance(schema, dict):
        return "the schema is not an object"
    try:
        Draft202012Validator.check_schema(schema)
    except SchemaError as exc:
        return exc.message
    return _strict_problem(schema) if strict else ""


def constrained(schema: dict, preferred: object) -> str:
    """What a decoder held to ``schema`` sends: the preferred answer (JSON text or a value) if it is valid, else a
    valid instance built from the schema."""
    try:
        candidate = json.loads(preferred) if isinstance(preferred, str) else preferred
    except ValueError:
        candidate = None
    if candidate is not None and Draft202012Validator(schema).is_valid(candidate):
        return json.dumps(candidate)
    return json.dumps(schema_instance(schema))


def schema_instance(schema: dict) -> object:
    """The simplest value valid under ``schema`` (the subset of JSON Schema the product's answer schemas use)."""
    if "anyOf" in schema:
        return schema_instance(schema["anyOf"][0])
    if "enum" in schema:
        return schema["enum"][0]
    kind = schema.get("type")
    if kind == "object":
        return {name: schema_instance(schema["properties"][name]) for name in schema.get("required", [])}
    if kind == "array":
        items = schema.get("items", {})
        count = min(max(schema.get("minItems", 0), 1), schema.get("maxItems", 1))
        if "enum" in items:
            return list(items["enum"][:count])
        return [schema_instance(items) for _ in range(count)]
    if kind == "string":
        return "x" * max(schema.get("minLength", 0), 1)
    raise ValueError(f"no instance for {schema!r:.80}")


def chat_logprobs(tokens: list[tuple[str, float]]) -> dict:
    """A chat completion's logprobs: each token with its probability (sent as its log), and its top alternatives."""
    return {"content": [{"token": text, "logprob": math.log(p), "bytes": list(text.encode()),
                         "top_logprobs": [{"token": text, "logprob": math.log(p)}]} for text, p in tokens]}


def completion_logprobs(tokens: list[tuple[str, float]]) -> dict:
    """A text completion's logprobs (the legacy shape): parallel lists."""
    return {"tokens": [text for text, _ in tokens], "token_logprobs": [math.log(p) for _, p in tokens],
            "top_logprobs": [{text: math.log(p)} for text, p in tokens]}


def _handler(fake: FakeLLM) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args) -> None:
            pass

        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
            auth = self.headers.get("Authorization", "")
            with fake.lock:
                fake.requests.append({"at": time.monotonic(), "auth": auth, "body": body, "path": self.path})
            reply = fake.next_reply(auth, body)
            with fake.lock:
                fake.statuses[reply.status] += 1
                if reply.status == 200:
                    fake.accepted_at.append(time.monotonic())
            if reply.delay:
                time.sleep(reply.delay)
            if reply.status == 200:
                text_completion = self.path.endswith("/completions") and not self.path.endswith("chat/completions")
                choice = {"text": reply.content} if text_completion else {"message": {"content": reply.content}}
                if reply.logprobs is not None:
                    choice["logprobs"] = reply.logprobs
                payload = {"model": body.get("model", "fake"), "choices": [choice],
                           "usage": reply.usage or {"prompt_tokens": 100, "completion_tokens": 12}}
            else:
                payload = {"error": {"message": reply.error or f"scripted {reply.status}"}}
            data = reply.body if reply.body is not None else json.dumps(payload).encode()
            try:
                self._send(reply, data)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client timed out or gave up first, as scripted

        def _send(self, reply: Reply, data: bytes) -> None:
            headers = {"Content-Type": "application/json", **reply.headers}
            if not reply.http10:
                headers["Content-Length"] = str(len(data) if reply.content_length is None else reply.content_length)
            if reply.retry_after is not None:
                headers["Retry-After"] = f"{reply.retry_after:.0f}"
            version = "HTTP/1.0" if reply.http10 else "HTTP/1.1"
            phrase = self.responses.get(reply.status, ("Scripted",))[0]
            head = (f"{version} {reply.status} {phrase}\r\n"
                    + "".join(f"{name}: {value}\r\n" for name, value in headers.items()) + "\r\n").encode()
            self.close_connection = reply.http10 or reply.content_length is not None
            self._write(head, drip=reply.drip if reply.drip_head else 0.0)
            if reply.reset_after is not None:
                self.wfile.write(data[:reply.reset_after])
                # SO_LINGER 0: close() sends a reset instead of an orderly end
                self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                self.connection.close()
                self.close_connection = True
                return
            self._write(data, drip=reply.drip)

        def _write(self, data: bytes, *, drip: float) -> None:
            if not drip:
                self.wfile.write(data)  # not joined with the head: a test may measure the memory of a call
                return
            for index in range(len(data)):
                self.wfile.write(data[index:index + 1])
                time.sleep(drip)

    return Handler


class _QuietServer(ThreadingHTTPServer):
    def handle_error(self, request, client_address) -> None:
        pass  # clients that are killed or time out mid-request are part of the scripts


def max_in_window(times: list[float], window: float) -> int:
    """The most of ``times`` (sorted) within any half-open window [t, t + window)."""
    best, start = 0, 0
    for end, moment in enumerate(times):
        while moment - times[start] >= window:
            start += 1
        best = max(best, end - start + 1)
    return best


def start_fake_llm(fake: FakeLLM) -> ThreadingHTTPServer:
    server = _QuietServer(("127.0.0.1", 0), _handler(fake))
    server.daemon_threads = True
    fake.url = f"http://127.0.0.1:{server.server_address[1]}/v1"
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


@contextmanager
def serving_fake_llm() -> Iterator[FakeLLM]:
    """A fake LLM server on loopback for the block's duration."""
    fake = FakeLLM()
    server = start_fake_llm(fake)
    try:
        yield fake
    finally:
        server.shutdown()
        server.server_close()
