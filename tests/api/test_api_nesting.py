"""A JSON body nested deeper than anyone writes (1,000 levels: Python's decoder recurses once per level) gets the
API's 400 JSON error from every endpoint, never a 500 with a RecursionError in the log."""

from __future__ import annotations

import logging
import re
import uuid

import pytest
from django.urls import URLPattern

from api.urls import urlpatterns
from tests.api.conftest import TokenClient, make_token

pytestmark = pytest.mark.django_db

DEEP = 1_000
BODIES = {
    "arrays": "[" * DEEP + "]" * DEEP,
    "objects": '{"a":' * DEEP + "1" + "}" * DEEP,
    "inside a field": '{"worker": ' + "[" * DEEP + "]" * DEEP + "}",
    "deeper than the limit": '{"all": ' + "[" * 40 + "true" + "]" * 40 + "}",
}
# Values for the path's parameters; the address need not name anything that exists (the body is read first).
PARAMETERS = {"str": "annotator_1_urgency", "uuid": str(uuid.uuid4())}
NOT_JSON_ENDPOINTS = {"metrics", "api/v1/schema", "api/v1/docs"}


def endpoints() -> list[str]:
    found = []
    for pattern in urlpatterns:
        route = getattr(pattern.pattern, "_route", None)
        if not isinstance(pattern, URLPattern) or route is None or route in NOT_JSON_ENDPOINTS:
            continue  # the catch-all 404 is a regex; metrics, schema and docs take no body
        route = re.sub(r"<(\w+):\w+>", lambda m: PARAMETERS[m.group(1)], route)
        found.append("/" + route)
    return found


@pytest.fixture
def superuser_api(catalogue, django_user_model) -> TokenClient:
    root = django_user_model.objects.create_superuser("root", password="pw-for-tests")
    return TokenClient(make_token(root, "deep"))


def test_every_endpoint_is_walked():
    assert len(endpoints()) >= 25 and "/api/v1/workers/actions/pause" in endpoints()


@pytest.mark.parametrize("method", ["post", "put", "patch", "delete"])
@pytest.mark.parametrize("shape", list(BODIES))
def test_a_deeply_nested_body_is_a_400_json_error_at_every_endpoint(superuser_api, shape, method, caplog):
    for path in endpoints():
        with caplog.at_level(logging.ERROR):
            response = getattr(superuser_api, method)(path, BODIES[shape], content_type="application/json")
        # 404: an address naming no action answers before reading the body; 415: the import takes multipart only.
        assert response.status_code in (400, 404, 405, 415), (path, response.status_code, response.content[:300])
        assert response["Content-Type"] == "application/json" and "error" in response.json(), path
        if method == "post" and response.status_code not in (404, 405, 415):
            assert response.json()["error"] == "malformed_request", (path, response.json())
            assert "nested" in response.json()["detail"]
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], [r.getMessage() for r in caplog.records]
