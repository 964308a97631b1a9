"""Hostile values typed into the admin's forms by a staff user: each is refused on the form, naming the field and
the reason, and nothing is stored."""

from __future__ import annotations

import json

import pytest
from django.test import override_settings

from tests.helpers import form_data
from workers_app.models import AlertChannel, Annotator, Domain

pytestmark = pytest.mark.django_db

ANNOTATOR_CASES = [
    ({"structured": "xml"}, "structured", "Select a valid choice"),
    ({"structured": "grammar"}, "structured", "Structured output is for the OpenAI-compatible backend"),
    ({"api_key_env": "ADMIN_PASSWORD"}, "api_key_env", "starts with LLM_KEY_"),
    ({"api_key_env": "SECRET_KEY"}, "api_key_env", "starts with LLM_KEY_"),
    ({"api_key_env": "DATABASE_URL"}, "api_key_env", "starts with LLM_KEY_"),
    ({"api_key_env": "FIELD_ENCRYPTION_KEY"}, "api_key_env", "starts with LLM_KEY_"),
    ({"api_key_env": "sk-live-abcdefghijklmnop1234"}, "api_key_env", "looks like an API key"),
    ({"api_key_env": "LLM_KEY_"}, "api_key_env", "starts with LLM_KEY_"),
    ({"api_key_env": "llm_key_lower"}, "api_key_env", "starts with LLM_KEY_"),
    ({"api_key_env": "LLM_KEY_A B"}, "api_key_env", "starts with LLM_KEY_"),
    ({"name": "sk-proj-abcdefghijklmnopqrstuv"}, "name", "looks like an API key"),
    ({"model": "AIzaSyA1234567890abcdefghijklmnop"}, "model", "looks like an API key"),
    ({"name": "bell\x07name"}, "name", "Control characters"),
    ({"api_key": "short"}, "api_key", "8 to 500 printable characters"),
    ({"api_key": "has a space 12345"}, "api_key", "8 to 500 printable characters"),
    ({"api_key": "x" * 501}, "api_key", "8 to 500 printable characters"),
    ({"base_url": "file:///etc/passwd"}, "base_url", "Enter a valid URL"),
    ({"base_url": "gopher://evil.example/x"}, "base_url", "Enter a valid URL"),
    ({"base_url": "javascript:alert(1)"}, "base_url", "Enter a valid URL"),
    ({"base_url": "http://user:pw@example.com/v1"}, "base_url", "credentials"),
    ({"base_url": "http://169.254.169.254/latest/meta-data"}, "base_url", "169.254.169.254"),
    ({"base_url": "http://127.0.0.1:6379/"}, "base_url", "127.0.0.1"),
    ({"base_url": "http://10.0.0.8/v1"}, "base_url", "10.0.0.8"),
    ({"backend": "openai_compatible", "base_url": ""}, "base_url", "needs a base URL"),
    ({"timeout_seconds": "-1"}, "timeout_seconds", "greater than or equal to 0.1"),
    ({"timeout_seconds": "1e9"}, "timeout_seconds", "less than or equal to 600"),
    ({"timeout_seconds": "nan"}, "timeout_seconds", ""),
    ({"temperature": "inf"}, "temperature", ""),
    ({"max_tokens": "0"}, "max_tokens", "greater than or equal to 1"),
    ({"max_tokens": str(10**9)}, "max_tokens", "less than or equal to 32768"),
    ({"requests_per_minute": "0"}, "requests_per_minute", "greater than or equal to 1"),
    ({"requests_per_minute": str(10**7)}, "requests_per_minute", "less than or equal to 100000"),
    ({"max_retries": "99"}, "max_retries", "less than or equal to 10"),
    ({"number": "0"}, "number", "greater than or equal to 1"),
    ({"number": "1000"}, "number", "less than or equal to 99"),
    ({"backend": "evil"}, "backend", "Select a valid choice"),
    ({"request_mode": "evil"}, "request_mode", "Select a valid choice"),
    ({"builtin_malformed_rate": "2"}, "builtin_malformed_rate", "less than or equal to 1"),
    ({"max_input_chars": str(10**7)}, "max_input_chars", "less than or equal to 100000"),
]

DOMAIN_CASES = [
    ({"parse_rules": json.dumps({"none_code": 5})}, "parse_rules", "'none_code' must be a code"),
    ({"parse_rules": json.dumps({"evil": 1})}, "parse_rules", "'evil' is not a rule of a code_set domain"),
    ({"parse_rules": json.dumps([])}, "parse_rules", "Give an object"),
    ({"parse_rules": json.dumps({"max_items": 3})}, "parse_rules", "not a rule of a code_set domain"),
    ({"codes": json.dumps([1, 2])}, "codes", "Entry 1"),
    ({"codes": json.dumps([{"code": "A"}, {"code": "A"}])}, "codes", "appears twice"),
    ({"codes": json.dumps([{"code": "../x"}])}, "codes", "the code must be"),
    ({"codes": json.dumps([{"code": "A", "evil": True}])}, "codes", "nothing else"),
    ({"codes": json.dumps("not a list")}, "codes", "Give a list"),
    ({"codes": json.dumps([])}, "codes", "at least one code"),
    ({"codes": "[not json"}, "codes", "Enter a valid JSON"),
    ({"prompt_template": "no placeholder here"}, "prompt_template", "must contain {text}"),
    ({"slug": "../../pwn"}, "slug", "valid “slug”"),
    ({"kind": "evil"}, "kind", "Select a valid choice"),
    ({"few_shot": json.dumps([{"message": "x"}])}, "few_shot", "Example 1 needs"),
    ({"few_shot": json.dumps([{"message": "m", "answer": "<<A>>"}] * 21)}, "few_shot", "at most 20"),
]

STRING_LIST_CASES = [
    ({"parse_rules": json.dumps({"max_items": -1})}, "parse_rules", "from 1 to 100"),
    ({"parse_rules": json.dumps({"min_items": 5, "max_items": 2})}, "parse_rules", "must not exceed"),
    ({"parse_rules": json.dumps({"max_item_chars": True})}, "parse_rules", "whole number"),
    ({"parse_rules": json.dumps({"none_code": "NONE"})}, "parse_rules", "not a rule of a string_list domain"),
]

CHANNEL_CASES = [
    ({"kind": "webhook", "target": "gopher://evil.example/"}, "only http and https"),
    ({"kind": "webhook", "target": "file:///etc/passwd"}, "only http and https"),
    ({"kind": "webhook", "target": "just some free text"}, "only http and https"),
    ({"kind": "webhook", "target": "http://169.254.169.254/hook"}, "169.254.169.254"),
    ({"kind": "webhook", "target": "http://localhost:9000/hook"}, "localhost"),
    ({"kind": "email", "target": "not-an-email"}, "valid email"),
]


def _errors(response, field: str) -> str:
    assert response.status_code == 200, f"the form was accepted ({response.status_code})"
    form = response.context["adminform"].form
    return " ".join(form.errors.get(field, []))


@pytest.fixture
def admin_client(client, staff):
    client.force_login(staff)
    return client


@pytest.mark.parametrize(("change", "field", "message"), ANNOTATOR_CASES)
@override_settings(OUTBOUND_ALLOW=[])
def test_the_annotator_form_refuses_it_and_stores_nothing(catalogue, admin_client, unchanged, change, field, message):
    annotator = Annotator.objects.get(number=1)
    response = admin_client.post(f"/admin/workers_app/annotator/{annotator.pk}/change/",
                                 form_data(annotator, **change))
    errors = _errors(response, field)
    assert errors and message in errors
    assert "sk-" not in str(change.get("api_key", "")) or change["api_key"] not in response.content.decode()
    unchanged()


@pytest.mark.parametrize(("change", "field", "message"), DOMAIN_CASES)
def test_the_domain_form_refuses_it_and_stores_nothing(catalogue, admin_client, unchanged, change, field, message):
    domain = Domain.objects.get(slug="adjunct")
    response = admin_client.post(f"/admin/workers_app/domain/{domain.pk}/change/", form_data(domain, **change))
    errors = _errors(response, field)
    assert errors and message in errors
    unchanged()


@pytest.mark.parametrize(("change", "field", "message"), STRING_LIST_CASES)
def test_the_rules_of_a_string_list_domain_are_checked(catalogue, admin_client, unchanged, change, field, message):
    domain = Domain.objects.get(slug="redressal")
    response = admin_client.post(f"/admin/workers_app/domain/{domain.pk}/change/", form_data(domain, **change))
    assert message in _errors(response, field)
    unchanged()


@pytest.mark.parametrize(("values", "message"), CHANNEL_CASES)
@override_settings(OUTBOUND_ALLOW=[])
def test_an_alert_channel_target_outside_the_policy_is_refused(catalogue, admin_client, unchanged, values, message):
    response = admin_client.post("/admin/workers_app/alertchannel/add/", {**values, "enabled": "on"})
    assert message in _errors(response, "target")
    assert not AlertChannel.objects.exists()
    unchanged()


def test_a_typed_key_is_never_rendered_back(catalogue, admin_client):
    annotator = Annotator.objects.get(number=1)
    key = "sk-typed-key-0123456789abcdef"
    response = admin_client.post(f"/admin/workers_app/annotator/{annotator.pk}/change/",
                                 form_data(annotator, api_key=key, max_tokens="0"))
    assert response.status_code == 200 and key not in response.content.decode()
