"""The rules personal API tokens keep, wherever a token is made or used (api/tokens.py, api/authentication.py,
api/throttling.py): a demoted or deactivated account's tokens are revoked and authentication checks the account is
still allowed in; a user's tokens share one request budget and a user has a bounded number of live tokens; the
token form offers non-superusers only themselves and shows a new secret on its page, never in a cookie; every 401
leaves an audit row."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.contrib.auth.models import Group
from django.core.exceptions import ValidationError
from django.test import Client
from django.utils import timezone

from api.models import ApiToken
from api.tokens import create_token, revoke_tokens
from audit.models import AuditLog
from tests.api.conftest import TokenClient, make_token

pytestmark = pytest.mark.django_db

ADD = "/admin/api/apitoken/add/"


def works(secret: str) -> bool:
    return TokenClient(secret).get("/api/v1/queues").status_code == 200


def refused() -> list[AuditLog]:
    return list(AuditLog.objects.filter(action="refused").order_by("id"))


# --- demotion and deactivation (item 9) ---------------------------------------------------------------------------

@pytest.mark.parametrize("demote", [
    pytest.param(lambda user: setattr(user, "is_staff", False) or user.save(), id="staff status removed"),
    pytest.param(lambda user: setattr(user, "is_active", False) or user.save(), id="deactivated"),
    pytest.param(lambda user: user.groups.clear(), id="every group removed"),
    pytest.param(lambda user: user.groups.remove(*user.groups.all()), id="its groups removed one by one"),
    pytest.param(lambda user: Group.objects.get(name="operator").user_set.remove(user), id="removed from the group"),
    pytest.param(lambda user: Group.objects.get(name="operator").delete(), id="its group deleted"),
])
def test_demoting_an_account_revokes_its_tokens(roles, demote):
    operator = roles["operator"]
    secrets = [make_token(operator, "ci"), make_token(operator, "notebook")]
    assert all(works(secret) for secret in secrets)

    demote(operator)

    assert not ApiToken.objects.filter(user=operator, revoked_at__isnull=True).exists()
    assert {TokenClient(s).get("/api/v1/queues").json()["error"] for s in secrets} == {"token_revoked"}
    row = AuditLog.objects.get(action="revoke_api_token", target="operator:ci")
    assert row.parameters["reason"] == "the owner is no longer allowed in"


def test_an_account_that_keeps_a_role_keeps_its_tokens(roles):
    operator = roles["operator"]
    operator.groups.add(Group.objects.get(name="viewer"))
    secret = make_token(operator, "ci")
    operator.groups.remove(Group.objects.get(name="operator"))
    operator.first_name = "Olga"
    operator.save()
    assert works(secret) and not AuditLog.objects.filter(action="revoke_api_token").exists()


def test_demoting_in_the_admin_revokes_the_tokens(roles, staff):
    secret = make_token(roles["viewer"], "dash")
    admin = Client()
    admin.force_login(staff)
    page = admin.get(f"/admin/auth/user/{roles['viewer'].pk}/change/")
    assert page.status_code == 200
    viewer = roles["viewer"]
    admin.post(f"/admin/auth/user/{viewer.pk}/change/", {
        "username": viewer.username, "is_active": "on", "groups": [], "user_permissions": [],
        "last_login_0": "", "last_login_1": "", "date_joined_0": f"{viewer.date_joined:%Y-%m-%d}",
        "date_joined_1": f"{viewer.date_joined:%H:%M:%S}"})
    assert not works(secret)
    assert AuditLog.objects.filter(action="revoke_api_token", actor="staff", target="viewer:dash").exists()


@pytest.mark.parametrize("change", [{"is_staff": False}, {"is_active": False}])
def test_authentication_checks_the_account_is_still_allowed_in(roles, change):
    from django.contrib.auth import get_user_model

    secret = make_token(roles["viewer"], "dash")
    get_user_model().objects.filter(pk=roles["viewer"].pk).update(**change)  # no signal: a raw database edit

    response = TokenClient(secret).get("/api/v1/queues")
    assert response.status_code == 401 and response.json()["error"] == "invalid_token"


def test_authentication_refuses_an_account_left_without_any_role(roles):
    secret = make_token(roles["viewer"], "dash")
    Group.objects.get(name="viewer").user_set.through.objects.filter(user_id=roles["viewer"].pk).delete()  # raw
    assert TokenClient(secret).get("/api/v1/queues").status_code == 401


def test_a_token_is_never_made_for_an_account_not_allowed_in(roles, staff, django_user_model):
    outsider = django_user_model.objects.create_user("outsider", password="pw-for-tests")
    with pytest.raises(ValidationError, match="not allowed in"):
        create_token(outsider, name="x", expires_at=timezone.now() + timedelta(days=1), actor=staff)
    assert not ApiToken.objects.exists()


# --- one budget per user, a bounded number of live tokens (item 13) -----------------------------------------------

def test_a_users_tokens_share_one_request_budget(roles, settings):
    settings.API_USER_RATE = "3/min"
    first, second = TokenClient(make_token(roles["viewer"], "a")), TokenClient(make_token(roles["viewer"], "b"))
    assert [first.get("/api/v1/queues").status_code for _ in range(3)] == [200, 200, 200]
    assert second.get("/api/v1/queues").status_code == 429
    third = TokenClient(make_token(roles["viewer"], "c"))
    assert third.get("/api/v1/queues").status_code == 429
    assert TokenClient(make_token(roles["operator"], "other")).get("/api/v1/queues").status_code == 200


def test_the_browser_session_spends_the_same_budget(roles, settings):
    settings.API_USER_RATE = "2/min"
    token = TokenClient(make_token(roles["viewer"], "a"))
    browser = Client()
    browser.force_login(roles["viewer"])
    assert [token.get("/api/v1/queues").status_code, browser.get("/api/v1/queues").status_code,
            token.get("/api/v1/queues").status_code] == [200, 200, 429]


def test_a_user_has_at_most_the_allowed_number_of_live_tokens(roles, settings):
    settings.API_MAX_TOKENS_PER_USER = 2
    viewer = roles["viewer"]
    make_token(viewer, "one")
    make_token(viewer, "two")
    with pytest.raises(ValidationError, match="2 live tokens"):
        make_token(viewer, "three")
    assert AuditLog.objects.filter(action="create_api_token", result="failed", target="viewer").exists()
    revoke_tokens(list(ApiToken.objects.filter(name="one")), actor=viewer)
    make_token(viewer, "three")
    ApiToken.objects.filter(name="two").update(expires_at=timezone.now() - timedelta(seconds=1))
    make_token(viewer, "four")
    assert ApiToken.objects.filter(user=viewer).count() == 4


# --- the token form (item 10) -------------------------------------------------------------------------------------

def _form(user, name: str = "notebook") -> dict:
    expires = timezone.now() + timedelta(days=30)
    return {"user": user.pk, "name": name, "expires_at_0": f"{expires:%Y-%m-%d}", "expires_at_1": f"{expires:%H:%M:%S}"}


def test_the_token_form_offers_a_non_superuser_only_themself(roles):
    browser = Client()
    browser.force_login(roles["viewer"])
    page = browser.get(ADD).content.decode()
    listing = browser.get("/admin/api/apitoken/").content.decode()
    for other in ("operator", "reviewer"):
        assert other not in page and other not in listing
    assert re.search(r'<option value="\d+" selected>viewer</option>', page)
    response = browser.post(ADD, _form(roles["operator"]))
    assert response.status_code == 200 and "Select a valid choice" in response.content.decode()
    assert not ApiToken.objects.exists()


def test_a_superuser_may_choose_among_the_accounts_allowed_in(roles, staff, django_user_model):
    django_user_model.objects.create_user("outsider", password="pw-for-tests")
    admin = Client()
    admin.force_login(staff)
    page = admin.get(ADD).content.decode()
    assert all(f">{name}</option>" in page for name in ("viewer", "reviewer", "operator", "staff"))
    assert ">outsider</option>" not in page


def test_a_new_secret_is_shown_on_the_response_page_never_in_a_cookie(roles):
    browser = Client()
    browser.force_login(roles["viewer"])
    response = browser.post(ADD, _form(roles["viewer"]))

    assert response.status_code == 200
    [secret] = re.findall(r"afc_[0-9a-f]+_[\w-]+", response.content.decode())
    assert works(secret)
    assert all(secret not in morsel.value for morsel in response.cookies.values())
    assert "messages" not in response.cookies
    assert "no-store" in response["Cache-Control"]
    assert secret not in browser.get("/admin/api/apitoken/").content.decode()
# --- every 401 leaves an audit row (item 15) -----------------------------------------------------------------

def _token_refusal() -> str:
    [row] = refused()
    return row.detail["error"]


def test_a_request_with_an_invalid_token_leaves_a_refused_row(roles):
    make_token(roles["operator"])
    assert TokenClient("afc_000000000000_wrong").get("/api/v1/workers").status_code == 401
    assert "invalid_token" in _token_refusal()


def test_a_request_with_a_revoked_token_leaves_a_refused_row(roles):
    secret = make_token(roles["operator"], "leaked")
    revoke_tokens(list(ApiToken.objects.filter(name="leaked")), actor="root")
    assert TokenClient(secret).get("/api/v1/workers").status_code == 401
    assert "token_revoked" in _token_refusal() and "leaked" in _token_refusal()


def test_a_request_with_an_expired_token_leaves_a_refused_row(roles):
    secret = make_token(roles["operator"], "old")
    ApiToken.objects.filter(name="old").update(expires_at=timezone.now() - timedelta(seconds=1))
    assert TokenClient(secret).get("/api/v1/workers").status_code == 401
    assert "token_expired" in _token_refusal()


def test_a_request_without_credentials_leaves_a_refused_row(roles):
    assert TokenClient(None).get("/api/v1/workers").status_code == 401
    assert "401" in _token_refusal()
