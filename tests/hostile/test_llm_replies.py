"""Whatever an LLM server sends (megabytes, one byte at a time, broken JSON, a gzip bomb, a redirect, its own copy of
the API key), a worker's call ends within the annotator's timeout, holds at most LLM_MAX_RESPONSE_BYTES, stores no
bad content, and never stores or logs the key. Each case runs the real annotation step against a real server on
loopback (tests/fake_llm.py) that misbehaves as scripted."""

from __future__ import annotations

import gzip
import json
import logging
import time
import tracemalloc

import pytest
from django.conf import settings

from audit.models import AuditLog
from tests.fake_llm import Reply
from tests.helpers import make_samples
from workers_app.engine.annotate import Result, RetryLater, annotate_sample
from workers_app.engine.backends import ERROR_BODY_CHARS
from workers_app.engine.keys import WorkerKey
from workers_app.models import Annotator, MalformedAttempt, Outcome

pytestmark = pytest.mark.django_db

URGENCY = WorkerKey(1, "urgency")
KEY = "sk-hostile-test-key-0123456789abcdef"
CAP = 262144


def _answer(content: str) -> bytes:
    return json.dumps({"model": "fake-model", "choices": [{"message": {"content": content}}]}).encode()


VALID = _answer("Clear cues. <<LEVEL_2>>")


@pytest.fixture
def annotator(http_annotator, monkeypatch):
    """Annotator 1 over HTTP with an API key, and no retries: the first transient error asks for a requeue."""
    monkeypatch.setenv("LLM_KEY_HOSTILE_TEST", KEY)
    Annotator.objects.filter(number=1).update(api_key_env="LLM_KEY_HOSTILE_TEST", max_retries=0)
    return http_annotator


def _requeued(fake_llm, reply: Reply) -> str:
    """Annotate one sample against ``reply``; the message of the transient error that asked for a requeue."""
    fake_llm.default = reply
    [sample] = make_samples(1)
    with pytest.raises(RetryLater) as requeued:
        annotate_sample(sample, URGENCY, worker="w")
    return str(requeued.value)


def _nothing_stored() -> None:
    assert not Outcome.objects.exists() and not MalformedAttempt.objects.exists()
    assert Annotator.objects.get(number=1).backend_error == ""


@pytest.mark.parametrize(("reply", "reason"), [
    pytest.param(Reply(body=b"<html>I am not an API</html>"), "unreadable answer (not JSON: Expecting value",
                 id="not-json"),
    pytest.param(Reply(body=b""), "unreadable answer (not JSON", id="empty-body"),
    pytest.param(Reply(body=b'{"id": "x", "object": "chat.completion"}'), "unreadable answer (no choices)",
                 id="no-choices"),
    pytest.param(Reply(body=b'{"choices": []}'), "unreadable answer (no choices)", id="empty-choices"),
    pytest.param(Reply(body=b'{"choices": "<<LEVEL_1>>"}'), "unreadable answer (no choices)", id="choices-text"),
    pytest.param(Reply(body=b'{"choices": ["<<LEVEL_1>>"]}'), "unreadable answer (choices[0] is not an object)",
                 id="choice-not-object"),
    pytest.param(Reply(body=b'{"choices": [{"text": "<<LEVEL_1>>"}]}'),
                 "unreadable answer (choices[0].message is missing or not an object)", id="no-message"),
    pytest.param(Reply(content=42), "unreadable answer (choices[0].message.content is int, not text)",
                 id="content-a-number"),
    pytest.param(Reply(content={"label": "LEVEL_1"}), "choices[0].message.content is dict, not text",
                 id="content-an-object"),
    pytest.param(Reply(body=b"[1, 2, 3]"), "unreadable answer (the JSON is list, not an object)", id="json-array"),
    pytest.param(Reply(body=b"[" * 100_000 + b"]" * 100_000), "unreadable answer (not JSON: maximum recursion",
                 id="nested-too-deeply"),
    pytest.param(Reply(body=b'{"choices": [{"message": {"content": "\xff\xfe <<LEVEL_1>>"}}]}'),
                 "unreadable answer (not JSON: 'utf-8' codec can't decode byte 0xff", id="invalid-utf8"),
    pytest.param(Reply(body=VALID, content_length=len(VALID) + 500), "connection failed", id="content-length-longer"),
    pytest.param(Reply(body=VALID, content_length=12), "unreadable answer (not JSON", id="content-length-shorter"),
    pytest.param(Reply(body=VALID, reset_after=20), "connection failed", id="reset-mid-body"),
    pytest.param(Reply(body=b"\x1f\x8b\x08\x00 this is not gzip", headers={"Content-Encoding": "gzip"}),
                 "unreadable answer: the compressed body is corrupt", id="corrupt-gzip"),
    pytest.param(Reply(body=VALID, headers={"Content-Encoding": "br"}),
                 "unreadable answer: content-encoding 'br', which was not asked for", id="unasked-encoding"),
    pytest.param(Reply(status=500, body=b"<html>" + b"<p>Traceback: frame</p>\n" * 200_000 + b"</html>",
                       headers={"Content-Type": "text/html"}), "HTTP 500: <html><p>Traceback: frame</p> <p>",
                 id="500-with-huge-html"),
    pytest.param(Reply(status=503, error=f"overloaded; your key {KEY} is fine"),
                 "HTTP 503: overloaded; your key [the API key] is fine", id="503-echoing-the-key"),
])
def test_a_broken_answer_is_a_transient_error_that_stores_nothing(annotator, fake_llm, reply, reason):
    message = _requeued(fake_llm, reply)

    assert message.startswith(reason) or reason in message
    assert len(message) <= ERROR_BODY_CHARS and KEY not in message
    _nothing_stored()


def _peak_memory_of(call) -> int:
    tracemalloc.start()
    try:
        call()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@pytest.mark.parametrize("reply", [
    pytest.param(Reply(body=_answer("x" * 5_000_000)), id="5-MB-body"),
    pytest.param(Reply(body=gzip.compress(b" " * 50_000_000, compresslevel=9), headers={"Content-Encoding": "gzip"}),
                 id="gzip-bomb-of-50-MB"),
])
def test_an_answer_larger_than_the_cap_is_cut_without_holding_it(annotator, fake_llm, reply):
    messages = []

    def call() -> None:
        messages.append(_requeued(fake_llm, reply))

    peak = _peak_memory_of(call)

    assert messages == [f"response larger than {CAP} bytes; cut"]
    assert peak < 2_000_000, f"the call held {peak} bytes"
    _nothing_stored()


@pytest.mark.parametrize("reply", [
    pytest.param(Reply(body=VALID, drip=0.2), id="body-dripping"),
    pytest.param(Reply(body=VALID, drip=0.2, drip_head=True), id="headers-dripping"),
    pytest.param(Reply(body=VALID, delay=30), id="no-answer-at-all"),
])
def test_a_server_that_sends_slowly_cannot_hold_a_call_past_its_timeout(annotator, fake_llm, reply):
    started = time.monotonic()
    message = _requeued(fake_llm, reply)
    took = time.monotonic() - started

    assert message == "no complete answer within 1 s"
    assert took < 2.0, f"the call took {took:.1f} s"
    _nothing_stored()


def _everything_recorded(caplog) -> str:
    rows = [Outcome.objects.values(), MalformedAttempt.objects.values(), Annotator.objects.values(),
            AuditLog.objects.values()]
    mirror = settings.DATA_DIR / "admin_audit.log"
    return json.dumps([list(r) for r in rows], default=str) + caplog.text + (
        mirror.read_text() if mirror.exists() else "")


def test_a_401_that_echoes_the_key_stops_the_annotator_without_recording_the_key(annotator, fake_llm, caplog):
    fake_llm.default = Reply(status=401, error=f"Incorrect API key provided: Bearer {KEY}. Find yours at ...")
    [sample] = make_samples(1)
    with caplog.at_level(logging.DEBUG):
        assert annotate_sample(sample, URGENCY, worker="w") is Result.BLOCKED

    assert fake_llm.requests[0]["auth"] == f"Bearer {KEY}"  # it was sent, as it must be
    error = Annotator.objects.get(number=1).backend_error
    assert error == "HTTP 401: Incorrect API key provided: Bearer [the API key]. Find yours at ..."
    assert AuditLog.objects.filter(action="backend_error").exists()
    assert KEY not in _everything_recorded(caplog)
    assert not Outcome.objects.exists() and not MalformedAttempt.objects.exists()


def test_a_key_echoed_in_an_answer_is_stored_without_the_key(annotator, fake_llm, caplog):
    fake_llm.default = Reply(content=f"You sent {KEY}; anyway: <<LEVEL_2>>")
    [sample] = make_samples(1)
    with caplog.at_level(logging.DEBUG):
        assert annotate_sample(sample, URGENCY, worker="w") is Result.STORED

    outcome = Outcome.objects.get()
    assert outcome.labels == ["LEVEL_2"] and outcome.raw_answer == "You sent [the API key]; anyway: <<LEVEL_2>>"
    assert KEY not in _everything_recorded(caplog)


def test_a_key_echoed_in_an_unreadable_answer_is_not_in_the_error(annotator, fake_llm):
    message = _requeued(fake_llm, Reply(body=f"<html>debug: Authorization: Bearer {KEY}</html>".encode()))
    assert "Bearer [the API key]" in message and KEY not in message
    _nothing_stored()


def test_a_redirect_is_not_followed_and_stops_the_annotator_with_the_reason(annotator, fake_llm):
    fake_llm.default = Reply(status=302, body=b"", headers={"Location": f"{fake_llm.url}/elsewhere"})
    [sample] = make_samples(1)
    assert annotate_sample(sample, URGENCY, worker="w") is Result.BLOCKED

    assert len(fake_llm.requests) == 1
    assert Annotator.objects.get(number=1).backend_error == (
        "HTTP 302: redirects are not followed; set the base URL to the final address "
        f"({fake_llm.url}/elsewhere)")
    assert not Outcome.objects.exists()


def test_a_null_content_is_an_empty_answer_re_asked_and_stored_as_malformed(annotator, fake_llm):
    fake_llm.default = Reply(content=None)
    [sample] = make_samples(1)
    assert annotate_sample(sample, URGENCY, worker="w") is Result.MALFORMED

    outcome = Outcome.objects.get()
    assert (outcome.status, outcome.reason, outcome.raw_answer, outcome.labels) == ("malformed", "empty_answer", "",
                                                                                     [])
    assert MalformedAttempt.objects.get().reason == "empty_answer"


@pytest.mark.parametrize(("reply", "stored"), [
    pytest.param(Reply(body=VALID, http10=True), "Clear cues. <<LEVEL_2>>", id="http-1.0-close-delimited"),
    pytest.param(Reply(body=gzip.compress(VALID), headers={"Content-Encoding": "gzip"}), "Clear cues. <<LEVEL_2>>",
                 id="gzip-as-asked"),
    pytest.param(Reply(content="nul\x00 inside <<LEVEL_2>>"), "nul\ufffd inside <<LEVEL_2>>", id="nul-character"),
    pytest.param(Reply(body=b'{"choices": [{"message": {"content": "lone \\ud800 surrogate <<LEVEL_2>>"}}]}'),
                 "lone ? surrogate <<LEVEL_2>>", id="lone-surrogate"),
])
def test_an_odd_but_whole_answer_is_stored_as_every_database_can_hold_it(annotator, fake_llm, reply, stored):
    fake_llm.default = reply
    [sample] = make_samples(1)
    assert annotate_sample(sample, URGENCY, worker="w") is Result.STORED

    outcome = Outcome.objects.get()
    assert (outcome.labels, outcome.raw_answer) == (["LEVEL_2"], stored)


def test_garbage_usage_numbers_and_an_endless_model_name_are_not_stored(annotator, fake_llm):
    fake_llm.default = Reply(body=json.dumps({
        "model": "m" * 10_000, "choices": [{"message": {"content": "<<LEVEL_2>>"}}],
        "usage": {"prompt_tokens": "lots", "completion_tokens": 10**20}}).encode())
    [sample] = make_samples(1)
    assert annotate_sample(sample, URGENCY, worker="w") is Result.STORED

    outcome = Outcome.objects.get()
    assert (outcome.prompt_tokens, outcome.completion_tokens, outcome.model) == (None, None, "m" * 200)
