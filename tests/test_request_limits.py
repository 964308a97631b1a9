"""A request body larger than any page takes is refused before it is read."""

from __future__ import annotations

import pytest
from django.test import override_settings

from audit.models import AuditLog
from workers_app.models import Corpus

pytestmark = pytest.mark.django_db


@override_settings(MAX_REQUEST_BYTES=1024)
def test_an_oversized_upload_is_refused_with_413_before_anything_is_read(client, staff):
    client.force_login(staff)
    body = b"x" * 4096
    response = client.generic("POST", "/admin/workers_app/corpus/import/", body,
                              content_type="application/octet-stream")
    assert response.status_code == 413 and "larger than" in response.content.decode()
    assert not Corpus.objects.exists() and not AuditLog.objects.filter(action="import_corpus").exists()


def test_a_nonsense_content_length_is_a_bad_request(client):
    response = client.generic("POST", "/admin/login/", b"", CONTENT_LENGTH="lots")
    assert response.status_code == 400


def test_an_ordinary_request_passes(client):
    assert client.get("/healthz").status_code == 200
