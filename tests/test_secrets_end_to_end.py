"""Secrets end to end: keys typed into the admin and LLM_KEY_ variables reach only their own annotator's server,
and no other environment value ever leaves, through real worker processes and a loopback server that records
every byte it receives."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.conf import settings

from audit.models import AuditLog
from tests.helpers import form_data, make_samples
from tests.worker_processes import WorkerProcess
from workers_app.engine.queues import populate_queues
from workers_app.models import Annotator, Outcome

pytestmark = pytest.mark.django_db(transaction=True)

STORED_KEY = "sk-stored-key-of-annotator-one-0123456789"
ENV_KEY = "sk-env-key-of-annotator-two-9876543210"
SECRETS = {"ADMIN_PASSWORD": "admin-password-never-sent", "SECRET_KEY": "django-secret-key-never-sent-42",
           "FIELD_ENCRYPTION_KEY_HINT": "encryption-hint-never-sent", "LLM_KEY_OTHER": "sk-someone-elses-key-555555"}


class Recorder:
    def __init__(self):
        self.raw: list[tuple[str, bytes]] = []  # (model asked for, every byte received)
        self.lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def _handler(self):
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args) -> None:
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                model = json.loads(body)["model"]
                with recorder.lock:
                    recorder.raw.append((model, self.requestline.encode() + b"\n" + bytes(self.headers) + body))
                data = json.dumps({"model": model,
                                   "choices": [{"message": {"content": "<<LEVEL_1>>"}}]}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        return Handler

    def requests_of(self, model: str) -> list[bytes]:
        return [raw for asked, raw in self.raw if asked == model]


@pytest.fixture
def recorder():
    server = Recorder()
    yield server
    server.server.shutdown()
    server.server.server_close()


def _point(number: int, url: str, **fields) -> None:
    Annotator.objects.filter(number=number).update(backend=Annotator.Backend.OPENAI_COMPATIBLE, base_url=url,
                                                   model=f"model-{number}", max_retries=0, **fields)


def test_each_annotator_sends_only_its_own_key_and_no_other_secret_leaves(catalogue, recorder, client, staff,
                                                                           monkeypatch):
    client.force_login(staff)
    # Through the admin form, as staff would: annotator 1 gets a typed key; annotator 2 names an LLM_KEY_ variable.
    one, two = Annotator.objects.get(number=1), Annotator.objects.get(number=2)
    page = client.get(f"/admin/workers_app/annotator/{one.pk}/change/")
    assert page.status_code == 200 and STORED_KEY not in page.content.decode()
    response = client.post(f"/admin/workers_app/annotator/{one.pk}/change/", {
        **_form_values(one), "backend": "openai_compatible", "base_url": recorder.url, "model": "model-1", "api_key": STORED_KEY})
    assert response.status_code == 302, response.content.decode()[:2000]
    refused = client.post(f"/admin/workers_app/annotator/{two.pk}/change/", {
        **_form_values(two), "backend": "openai_compatible", "base_url": recorder.url,
        "model": "model-2", "api_key_env": "ADMIN_PASSWORD"})
    assert refused.status_code == 200 and "starts with LLM_KEY_" in refused.content.decode()
    _point(1, recorder.url)
    _point(2, recorder.url, api_key_env="LLM_KEY_TWO")
    # Annotator 3 is made to name ADMIN_PASSWORD behind validation's back (as a hostile state file could):
    # its workers must refuse to read it and send nothing.
    _point(3, recorder.url, api_key_env="ADMIN_PASSWORD")
    assert STORED_KEY not in json.dumps(list(Annotator.objects.values()), default=str)

    samples = make_samples(6, vary=True)
    environment = {**SECRETS, "LLM_KEY_TWO": ENV_KEY}
    workers = [WorkerProcess(f"annotator_{n}_urgency", **environment) for n in (1, 2, 3)]
    try:
        for worker in workers:
            worker.wait_ready()
        populate_queues(domain="urgency")
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not (
                Outcome.objects.filter(annotator__number__in=(1, 2)).count() == 2 * len(samples)
                and Annotator.objects.get(number=3).backend_error):
            time.sleep(0.2)
    finally:
        for worker in workers:
            worker.stop()

    assert Outcome.objects.filter(annotator__number__in=(1, 2)).count() == 2 * len(samples)
    assert "LLM_KEY_" in Annotator.objects.get(number=3).backend_error
    sent_one, sent_two = recorder.requests_of("model-1"), recorder.requests_of("model-2")
    assert len(sent_one) == len(sent_two) == len(samples) and recorder.requests_of("model-3") == []
    assert all(f"Authorization: Bearer {STORED_KEY}".encode() in raw for raw in sent_one)
    assert all(f"Authorization: Bearer {ENV_KEY}".encode() in raw for raw in sent_two)
    everything = b"".join(raw for _, raw in recorder.raw)
    for value in SECRETS.values():
        assert value.encode() not in everything
    assert ENV_KEY.encode() not in b"".join(sent_one) and STORED_KEY.encode() not in b"".join(sent_two)
    # ... and the keys are in no audit row, log, worker log or state export.
    audit = json.dumps(list(AuditLog.objects.values()), default=str)
    logs = b"".join(path.read_bytes() for path in settings.DATA_DIR.rglob("*.log"))
    for key in (STORED_KEY, ENV_KEY):
        assert key not in audit and key.encode() not in logs
    assert any(row.action == "set_api_key" for row in AuditLog.objects.all())


def _form_values(annotator: Annotator) -> dict:
    """The annotator's admin change form as the browser posts it back unchanged (no price versions inline)."""
    return {**form_data(annotator), "prices-TOTAL_FORMS": "0", "prices-INITIAL_FORMS": "0"}
