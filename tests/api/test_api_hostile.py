"""Hostile input to every body and parameter of the API: a JSON error naming the field, and nothing changed."""

from __future__ import annotations

import json

import pytest
from django.test import Client

pytestmark = pytest.mark.django_db

ACTION = "/api/v1/workers/actions/{}"


@pytest.mark.parametrize(("action", "body", "status", "error", "mentions"), [
    ("pause", [], 422, "invalid_request", "dictionary"),
    ("pause", "all", 422, "invalid_request", "dictionary"),
    ("pause", None, 422, "invalid_request", ""),
    ("pause", {}, 422, "invalid_request", "exactly one of"),
    ("pause", {"worker": "annotator_1_urgency", "all": True}, 422, "invalid_request", "worker and all"),
    ("pause", {"annotator": 1, "all": True}, 422, "invalid_request", "annotator/domain and all"),
    ("pause", {"all": False}, 422, "invalid_all", "all: true"),
    ("pause", {"all": "yes"}, 422, "invalid_all", "all"),
    ("pause", {"all": 1}, 422, "invalid_all", "all"),
    ("pause", {"annotator": "2"}, 422, "invalid_annotator", "integer"),
    ("pause", {"annotator": 2.5}, 422, "invalid_annotator", "integer"),
    ("pause", {"annotator": True}, 422, "invalid_annotator", "integer"),
    ("pause", {"annotator": 0}, 422, "invalid_annotator", "greater than or equal to 1"),
    ("pause", {"annotator": 10**30}, 422, "invalid_annotator", "less than or equal"),
    ("pause", {"annotator": 6}, 404, "unknown_worker", "no annotator 6"),
    ("pause", {"domain": ""}, 422, "invalid_domain", "blank"),
    ("pause", {"domain": 5}, 422, "invalid_domain", "string"),
    ("pause", {"domain": "x" * 51}, 422, "invalid_domain", "50 characters"),
    ("pause", {"domain": "nosuch"}, 404, "unknown_worker", "no domain 'nosuch'"),
    ("pause", {"domain": "urgency\x00"}, 422, "invalid_domain", "Null characters"),
    ("pause", {"worker": "annotator_1"}, 404, "unknown_worker", "not a worker name"),
    ("pause", {"worker": "annotator_1_nosuch"}, 404, "unknown_worker", "no domain"),
    ("pause", {"worker": ["annotator_1_urgency"]}, 422, "invalid_worker", "string"),
    ("pause", {"worker": "a" * 101}, 422, "invalid_worker", "100 characters"),
    ("pause", {"all": True, "force": True}, 422, "invalid_force", "pause takes no option 'force'"),
    ("stop", {"all": True, "force": "true"}, 422, "invalid_force", "boolean"),
    ("launch", {"all": True, "to_host": "hostB"}, 422, "invalid_to_host", "launch takes no option 'to_host'"),
    ("move", {"all": True}, 422, "invalid_to_host", "move needs 'to_host'"),
    ("move", {"all": True, "to_host": ""}, 422, "invalid_to_host", "blank"),
    ("move", {"all": True, "to_host": "bad host"}, 422, "invalid_to_host", "to_host"),
    ("move", {"all": True, "to_host": "-lead"}, 422, "invalid_to_host", "to_host"),
    ("move", {"all": True, "to_host": "h" * 101}, 422, "invalid_to_host", "to_host"),
    ("move", {"all": True, "to_host": 7}, 422, "invalid_to_host", "to_host"),
    ("pause", {"all": True, "colour": "red"}, 422, "invalid_colour", "unknown field"),
    ("pause", {"all": True, "__proto__": {}}, 422, "invalid___proto__", "unknown field"),
    ("explode", {"all": True}, 404, "unknown_action", "the actions are"),
    ("status", {"all": True}, 404, "unknown_action", "no action 'status'"),
])
def test_a_bad_action_body_is_refused_naming_the_field(as_operator, unchanged, action, body, status, error, mentions):
    response = as_operator.post(ACTION.format(action), json.dumps(body), content_type="application/json")
    assert response.status_code == status, response.content
    answer = response.json()
    assert answer["error"] == error and mentions in answer["detail"], answer
    unchanged()


@pytest.mark.parametrize(("raw", "content_type", "status", "error"), [
    ('{"all": true', "application/json", 400, "malformed_request"),
    ("\xff\xfe", "application/json", 400, "malformed_request"),
    ('{"all": NaN}', "application/json", 400, "malformed_request"),
    ("all=true", "application/x-www-form-urlencoded", 415, "unsupported_media_type"),
    ("all=true", "text/plain", 415, "unsupported_media_type"),
])
def test_a_body_that_is_not_json_is_refused(as_operator, unchanged, raw, content_type, status, error):
    response = as_operator.post(ACTION.format("pause"), raw, content_type=content_type)
    assert (response.status_code, response.json()["error"]) == (status, error), response.content
    unchanged()


def test_an_action_read_with_get_is_405(as_operator, unchanged):
    response = as_operator.get(ACTION.format("pause"))
    assert response.status_code == 405 and response.json()["error"] == "method_not_allowed"
    assert response["Allow"] == "POST, OPTIONS"
    unchanged()


@pytest.mark.parametrize(("path", "field"), [
    ("/api/v1/workers?annotator=abc", "annotator"),
    ("/api/v1/workers?annotator=0", "annotator"),
    ("/api/v1/workers?annotator=99999999999999999999", "annotator"),
    ("/api/v1/workers?domain=x%20y", "domain"),
    ("/api/v1/workers?domain=" + "x" * 51, "domain"),
    ("/api/v1/alerts?open=maybe", "open"),
    ("/api/v1/alerts?kind=%00", "kind"),
    ("/api/v1/alerts?limit=0", "limit"),
    ("/api/v1/alerts?limit=501", "limit"),
    ("/api/v1/alerts?limit=ten", "limit"),
    ("/api/v1/alerts?offset=-1", "offset"),
    ("/api/v1/audit?result=maybe", "result"),
    ("/api/v1/audit?since=yesterday", "since"),
    ("/api/v1/audit?actor=%00", "actor"),
    ("/api/v1/audit?target=" + "t" * 256, "target"),
    ("/api/v1/samples?corpus=-1", "corpus"),
    ("/api/v1/samples?corpus=1.5", "corpus"),
    ("/api/v1/samples?search=" + "s" * 201, "search"),
    ("/api/v1/outcomes?status=great", "status"),
    ("/api/v1/outcomes?annotator=-3", "annotator"),
    ("/api/v1/outcomes?sample=%00", "sample"),
    ("/api/v1/outcomes?run=Not%20A%20Name", "run"),
    ("/api/v1/costs?run=" + "r" * 41, "run"),
    ("/api/v1/progress?run=%00", "run"),
    ("/api/v1/review?run=../default", "run"),
])
def test_a_bad_query_parameter_is_422_naming_it(as_operator, unchanged, path, field):
    response = as_operator.get(path)
    assert response.status_code == 422, response.content
    assert response.json()["error"] == f"invalid_{field}" and response.json()["detail"].startswith(f"{field}:")
    unchanged()


@pytest.mark.parametrize("header", ["Bearer", "Bearer ", "Bearer a b", "Bearer " + "x" * 500, "Bearer \x00"])
def test_a_malformed_authorization_header_is_401(roles, unchanged, header):
    response = Client(HTTP_AUTHORIZATION=header).post(ACTION.format("pause"), {"all": True},
                                                      content_type="application/json")
    assert response.status_code == 401 and response.json()["error"] in ("invalid_token", "not_authenticated")
    unchanged()
