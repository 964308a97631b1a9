"""Stored API keys: encrypted at rest, readable by workers, rotatable without a restart, never in the audit log."""

from __future__ import annotations

import json

import pytest
from django.conf import settings
from django.core.management import call_command

from audit.models import AuditLog
from workers_app.engine.api_keys import BadApiKey, api_key_for, clear_api_key, set_api_key
from workers_app.models import Annotator

pytestmark = pytest.mark.django_db
KEY = "sk-test-rotation-0123456789abcdef"


def test_a_stored_key_is_encrypted_at_rest_and_survives_a_rotation_of_the_encryption_key(catalogue):
    annotator = Annotator.objects.get(number=1)
    set_api_key(annotator, KEY, actor="alice")
    token = Annotator.objects.get(pk=annotator.pk).api_key_encrypted
    key_file = settings.DATA_DIR / "field_encryption_key"
    old_file = key_file.read_bytes()
    assert KEY not in token and key_file.stat().st_mode & 0o077 == 0

    call_command("reencrypt_api_keys", "--new-key")

    rotated = Annotator.objects.get(pk=annotator.pk)
    assert rotated.api_key_encrypted != token and key_file.read_bytes() != old_file
    assert len(key_file.read_text().split()) == 1  # the old key is gone once nothing needs it
    assert api_key_for(rotated) == KEY
    assert KEY not in json.dumps(list(AuditLog.objects.values()), default=str)


def test_a_bad_key_is_refused_audited_and_not_stored(catalogue):
    annotator = Annotator.objects.get(number=2)
    with pytest.raises(BadApiKey, match="8 to 500 printable characters"):
        set_api_key(annotator, "has spaces in it", actor="alice")
    assert Annotator.objects.get(pk=annotator.pk).api_key_encrypted == ""
    row = AuditLog.objects.get(action="set_api_key")
    assert row.result == "failed" and "has spaces" not in json.dumps(row.detail)


def test_clearing_the_key_leaves_the_annotator_without_one(catalogue):
    annotator = Annotator.objects.get(number=3)
    set_api_key(annotator, KEY, actor="alice")
    clear_api_key(annotator, actor="alice")
    assert api_key_for(Annotator.objects.get(pk=annotator.pk)) == ""
