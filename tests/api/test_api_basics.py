"""The HTTP API over the fleet: tokens, permissions, errors and reads, through Django's test client."""

from __future__ import annotations

import socket
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from api.models import ApiToken
from api.tokens import revoke_tokens
from audit.models import AuditLog
from tests.api.conftest import TokenClient, make_token
from workers_app.models import Worker

pytestmark = pytest.mark.django_db


def test_a_token_reads_every_worker_with_its_state_and_health(as_viewer):
    response = as_viewer.get("/api/v1/workers")
    assert response.status_code == 200
    rows = response.json()
    assert len(rows) == 30 and {r["worker"] for r in rows} >= {"annotator_1_urgency", "annotator_5_redressal"}
    assert rows[0]["desired"] == "stopped" and rows[0]["healthy"] is True and rows[0]["heartbeat_age"] is None


def test_workers_filter_by_annotator_and_domain(as_viewer):
    assert len(as_viewer.get("/api/v1/workers?annotator=2").json()) == 6
    assert [r["worker"] for r in as_viewer.get("/api/v1/workers?annotator=2&domain=urgency").json()] == [
        "annotator_2_urgency"]


def test_a_worker_detail_has_its_five_checks(as_viewer):
    body = as_viewer.get("/api/v1/workers/annotator_3_intensity").json()
    assert body["worker"] == "annotator_3_intensity"
    assert [c["name"] for c in body["checks"]] == ["heartbeat", "progress", "error_rate", "memory", "workbook"]


@pytest.mark.parametrize("path", ["/api/v1/workers/annotator_9_urgency", "/api/v1/workers/annotator_1_nosuch",
                                  "/api/v1/workers/not-a-worker"])
def test_an_unknown_worker_is_404_with_a_json_error(as_viewer, path):
    response = as_viewer.get(path)
    assert response.status_code == 404
    assert response.json()["error"] == "unknown_worker" and response.json()["detail"]


def test_an_unknown_action_on_an_unknown_worker_names_what_exists(as_operator):
    response = as_operator.post_json("/api/v1/workers/actions/pause", {"worker": "annotator_7_urgency"})
    assert response.status_code == 404
    assert response.json() == {"error": "unknown_worker", "detail": "no annotator 7; the annotators are 1, 2, 3, 4, 5"}
    response = as_operator.post_json("/api/v1/workers/actions/explode", {"all": True})
    assert response.status_code == 404 and response.json()["error"] == "unknown_action"


def test_pausing_through_the_api_records_the_owner_and_the_token_name(as_operator):
    response = as_operator.post_json("/api/v1/workers/actions/pause", {"annotator": 2})
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["ok"] and len(body["results"]) == 6
    assert set(Worker.objects.filter(annotator__number=2).values_list("desired_state", flat=True)) == {"paused"}
    actors = set(AuditLog.objects.filter(action="pause_worker").values_list("actor", flat=True))
    assert actors == {"operator (token ops-script)"}


def test_a_token_without_the_permission_gets_403_and_nothing_changes(as_viewer, unchanged):
    response = as_viewer.post_json("/api/v1/workers/actions/pause", {"all": True})
    assert response.status_code == 403
    assert response.json() == {"error": "permission_denied",
                               "detail": "you need the 'workers_app.pause_worker' permission"}
    assert not AuditLog.objects.filter(action="pause_worker").exists()
    assert AuditLog.objects.filter(action="refused", actor="viewer").exists()
    unchanged()


def test_no_token_is_401_with_a_bearer_challenge(roles):
    response = TokenClient(None).get("/api/v1/workers")
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == 'Bearer realm="api"'
    assert response.json()["error"] == "not_authenticated"


def test_an_expired_token_is_401(roles):
    secret = make_token(roles["operator"], "old")
    ApiToken.objects.filter(name="old").update(expires_at=timezone.now() - timedelta(seconds=1))
    response = TokenClient(secret).get("/api/v1/workers")
    assert response.status_code == 401 and response.json()["error"] == "token_expired"


def test_a_revoked_token_is_401_and_its_revocation_is_audited(roles):
    secret = make_token(roles["operator"], "leaked")
    revoke_tokens(list(ApiToken.objects.filter(name="leaked")), actor=roles["operator"])
    response = TokenClient(secret).post_json("/api/v1/workers/actions/pause", {"all": True})
    assert response.status_code == 401 and response.json()["error"] == "token_revoked"
    assert AuditLog.objects.filter(action="revoke_api_token", target="operator:leaked", result="ok").exists()
    assert not AuditLog.objects.filter(action="pause_worker").exists()


@pytest.mark.parametrize("secret", ["afc_000000000000_wrong", "afc_", "nonsense", "afc_x_y_z" * 30, "é"])
def test_a_wrong_or_garbled_token_is_401(roles, secret):
    make_token(roles["operator"])
    response = Client(HTTP_AUTHORIZATION=f"Bearer {secret}").get("/api/v1/workers")
    assert response.status_code == 401 and response.json()["error"] == "invalid_token"


def test_only_the_digest_of_a_token_is_stored(roles):
    secret = make_token(roles["operator"], "ci")
    row = ApiToken.objects.get(name="ci")
    assert secret.startswith(f"afc_{row.prefix}_") and secret not in str(list(ApiToken.objects.values()))
    assert row.digest != secret and len(row.digest) == 64


def test_last_use_is_recorded(as_viewer):
    assert ApiToken.objects.get(name="dashboard").last_used_at is None
    as_viewer.get("/api/v1/queues")
    assert ApiToken.objects.get(name="dashboard").last_used_at is not None


def test_a_browser_session_works_and_needs_csrf_for_actions(roles):
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(roles["operator"])
    assert browser.get("/api/v1/workers").status_code == 200
    response = browser.post("/api/v1/workers/actions/pause", {"all": True}, content_type="application/json")
    assert response.status_code == 403 and "CSRF" in response.json()["detail"]
    assert not AuditLog.objects.filter(action="pause_worker").exists()


def test_reads_of_health_queues_progress_alerts_and_audit(as_operator, roles):
    for path in ("/api/v1/health", "/api/v1/queues", "/api/v1/progress", "/api/v1/alerts?open=true",
                 "/api/v1/audit?action=seed_roles", "/api/v1/samples", "/api/v1/outcomes?status=ok"):
        response = as_operator.get(path)
        assert response.status_code == 200, (path, response.content)
    assert as_operator.get("/api/v1/audit?action=seed_roles").json()["count"] == 1
    assert as_operator.get("/api/v1/progress").json()["samples"] == 0


def test_the_audit_log_needs_its_permission(as_viewer):
    response = as_viewer.get("/api/v1/audit")
    assert response.status_code == 403 and "audit.view_auditlog" in response.json()["detail"]


def test_schema_and_docs_are_served_without_a_cdn(as_viewer):
    schema = as_viewer.get("/api/v1/schema?format=json").json()
    assert {f"/api/v1/workers/actions/{a}" for a in ("launch", "pause", "resume", "stop", "restart", "flush")} <= set(
        schema["paths"])
    docs = as_viewer.get("/api/v1/docs")
    assert docs.status_code == 200 and b"cdn" not in docs.content.lower()


def test_an_address_under_api_that_names_no_endpoint_is_a_json_404(as_viewer):
    response = as_viewer.get("/api/v2/anything")
    assert response.status_code == 404 and response.json()["error"] == "not_found"


def test_with_redis_unreachable_the_api_answers_503_in_json_without_a_traceback(as_viewer, settings):
    from workers_app.redis_client import get_redis

    working = settings.REDIS_URL
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        settings.REDIS_URL = f"redis://127.0.0.1:{probe.getsockname()[1]}/0"
    get_redis.cache_clear()
    try:
        response = as_viewer.get("/api/v1/workers")
    finally:
        settings.REDIS_URL = working
        get_redis.cache_clear()
    assert response.status_code == 503 and response["Retry-After"] == "5"
    assert response.json()["error"] == "unavailable" and "Traceback" not in response.content.decode()


def test_describing_the_api_reads_nothing_from_the_database(django_assert_num_queries):
    from drf_spectacular.generators import SchemaGenerator

    with django_assert_num_queries(0):
        SchemaGenerator().get_schema(request=None, public=True)
