"""API tokens in the admin: made there and shown once, revoked there, never edited or deleted; staff other than
superusers only for themselves."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.contrib.auth.models import Permission
from django.core.exceptions import PermissionDenied
from django.test import Client
from django.utils import timezone

from api.models import ApiToken
from api.tokens import create_token
from audit.models import AuditLog
from tests.api.conftest import TokenClient

pytestmark = pytest.mark.django_db

ADD = "/admin/api/apitoken/add/"


def form(user, name: str = "notebook", days: int = 30) -> dict:
    expires = timezone.now() + timedelta(days=days)
    return {"user": user.pk, "name": name, "expires_at_0": f"{expires:%Y-%m-%d}", "expires_at_1": f"{expires:%H:%M:%S}"}


def shown_secret(response) -> str | None:
    found = re.search(r"afc_[0-9a-f]+_[\w-]+", response.content.decode())
    return found.group(0) if found else None


def test_a_superuser_makes_a_token_that_is_shown_once_and_works(staff, roles):
    admin = Client()
    admin.force_login(staff)
    response = admin.post(ADD, form(roles["operator"]), follow=True)
    secret = shown_secret(response)
    assert TokenClient(secret).get("/api/v1/workers").status_code == 200
    assert secret not in admin.get("/admin/api/apitoken/").content.decode()
    token = ApiToken.objects.get()
    assert token.user == roles["operator"] and secret.startswith(f"afc_{token.prefix}_")
    assert AuditLog.objects.filter(action="create_api_token", actor="staff", target="operator").exists()


def test_staff_make_tokens_only_for_themselves(roles):
    operator = roles["operator"]
    operator.user_permissions.add(*Permission.objects.filter(content_type__app_label="api"))
    browser = Client()
    browser.force_login(operator)
    response = browser.post(ADD, form(roles["viewer"]), follow=True)
    assert "select a valid choice" in response.content.decode().lower()  # the form offers no one else
    assert not ApiToken.objects.exists()
    with pytest.raises(PermissionDenied, match="only a superuser may make a token for another user"):
        create_token(roles["viewer"], name="borrowed", expires_at=timezone.now() + timedelta(days=1), actor=operator)
    assert AuditLog.objects.filter(action="create_api_token", result="failed").exists()
    assert shown_secret(browser.post(ADD, form(operator), follow=True))


@pytest.mark.parametrize(("days", "name", "problem"), [
    (-1, "old", "must be in the future"),
    (400, "forever", "at most 366 days away"),
])
def test_a_bad_expiry_is_refused_and_nothing_is_made(staff, roles, days, name, problem):
    admin = Client()
    admin.force_login(staff)
    response = admin.post(ADD, form(roles["operator"], name, days), follow=True)
    assert problem in response.content.decode().lower() and not ApiToken.objects.exists()


def test_revoking_in_the_admin_stops_the_token_at_once(staff, roles):
    from tests.api.conftest import make_token

    secret = make_token(roles["operator"], "ci")
    admin = Client()
    admin.force_login(staff)
    admin.post("/admin/api/apitoken/", {"action": "revoke", "_selected_action": [ApiToken.objects.get().pk]})
    assert ApiToken.objects.get().revoked_at is not None
    assert TokenClient(secret).get("/api/v1/workers").json()["error"] == "token_revoked"
    assert admin.post(f"/admin/api/apitoken/{ApiToken.objects.get().pk}/delete/").status_code == 403
