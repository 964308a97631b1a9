"""A stored API key goes only where whoever stored it meant it to go: changing the host (scheme, host or port) of an
annotator's base URL drops the stored key, unless a new key is typed in the same save. The attack it stops: with a
key stored by a superuser, an operator edits only the base URL, leaves the key field empty (the form still says
"stored API key: yes") and launches; the server at the new URL used to receive ``Authorization: Bearer <key>``.
Two real HTTP servers on loopback stand for the old and the new destination."""

from __future__ import annotations

import json

import pytest
from django.contrib.auth.models import Group
from django.core.management import call_command
from django.test import Client

from admin_ops.services.state import export_state, import_state
from audit.models import AuditLog
from tests.fake_llm import FakeLLM, serving_fake_llm
from tests.helpers import make_samples
from workers_app.engine.annotate import annotate_sample
from workers_app.engine.api_keys import set_api_key
from workers_app.engine.keys import WorkerKey
from workers_app.local_profile import use_local_gemma
from workers_app.models import Annotator

pytestmark = pytest.mark.django_db

KEY = "sk-stored-by-root-0123456789abcdef"


@pytest.fixture
def elsewhere():
    """The server an operator points the annotator at."""
    with serving_fake_llm() as fake:
        yield fake


@pytest.fixture
def keyed(http_annotator, fake_llm) -> Annotator:
    """Annotator 1 on the first server, with a key a superuser stored."""
    set_api_key(http_annotator, KEY, actor="root")
    return Annotator.objects.get(pk=http_annotator.pk)


@pytest.fixture
def operator(django_user_model) -> Client:
    call_command("seed_defaults")
    user = django_user_model.objects.create_user("olga", password="pw-for-tests", is_staff=True)
    user.groups.add(Group.objects.get(name="operator"))
    client = Client()
    client.force_login(user)
    return client


def change_form(annotator: Annotator, **changes) -> dict:
    fields = ("number", "name", "backend", "request_mode", "model", "base_url", "api_key_env", "requests_per_minute",
              "temperature", "max_tokens", "timeout_seconds", "max_retries", "max_input_chars", "builtin_latency_ms",
              "builtin_malformed_rate", "builtin_profile", "structured", "answers_per_item", "mode", "batch_protocol", "batch_size")
    values = {name: getattr(annotator, name) for name in fields}
    values.update({"budget": "", "prices-TOTAL_FORMS": "0", "prices-INITIAL_FORMS": "0", "api_key": "",
                   **({"enabled": "on"} if annotator.enabled else {}), **changes})
    return values


def launch(annotator: Annotator) -> None:
    [sample] = make_samples(1)
    annotate_sample(sample, WorkerKey(annotator.number, "urgency"), worker="w")


def keys_received(fake: FakeLLM) -> set[str]:
    return {request["auth"] for request in fake.requests}


def test_an_operator_who_changes_only_the_base_url_does_not_send_the_stored_key_there(keyed, operator, elsewhere):
    page = operator.get(f"/admin/workers_app/annotator/{keyed.pk}/change/").content.decode()
    assert "yes, set" in page  # the form says a key is stored

    response = operator.post(f"/admin/workers_app/annotator/{keyed.pk}/change/",
                             change_form(keyed, base_url=elsewhere.url))
    # Refused in the same save: the key must be typed again for the new host (or removed).
    assert response.status_code == 200 and "type the key" in response.content.decode()
    keyed.refresh_from_db()
    launch(keyed)

    assert elsewhere.requests == [] and keyed.base_url != elsewhere.url and keyed.api_key_encrypted != ""
    assert AuditLog.objects.filter(action="admin_change", actor="olga").count() == 0


def test_a_new_key_typed_in_the_same_save_goes_to_the_new_host(keyed, operator, elsewhere):
    operator.post(f"/admin/workers_app/annotator/{keyed.pk}/change/",
                  change_form(keyed, base_url=elsewhere.url, api_key="sk-the-operators-own-key-0123"))
    launch(Annotator.objects.get(pk=keyed.pk))
    assert keys_received(elsewhere) == {"Bearer sk-the-operators-own-key-0123"}


@pytest.mark.parametrize("same_place", ["{url}/", "{url}/chat/../", "{URL}"])
def test_the_same_host_keeps_the_key(keyed, operator, fake_llm, same_place):
    url = same_place.format(url=fake_llm.url, URL=fake_llm.url.upper().replace("HTTP://", "http://"))
    operator.post(f"/admin/workers_app/annotator/{keyed.pk}/change/", change_form(keyed, base_url=url))
    assert Annotator.objects.get(pk=keyed.pk).api_key_encrypted != ""


def test_another_port_on_the_same_host_is_another_destination(keyed):
    keyed.base_url = keyed.base_url.replace(keyed.base_url.rsplit(":", 1)[1].split("/")[0], "9")
    keyed.save()
    assert Annotator.objects.get(pk=keyed.pk).api_key_encrypted == ""


def test_a_state_import_that_moves_the_base_url_drops_the_key(keyed, elsewhere):
    document = json.loads(export_state(actor="root", target="state.json"))
    for annotator in document["catalogue"]["annotators"]:
        if annotator["number"] == keyed.number:
            annotator["base_url"] = elsewhere.url
    plan = import_state(json.dumps(document), source="moved.json", actor="olga")
    assert Annotator.objects.get(pk=keyed.pk).api_key_encrypted == ""
    assert any("stored API key removed" in change for change in plan.changes)


def test_switching_to_the_local_model_drops_the_key(keyed):
    use_local_gemma(keyed, actor="olga")
    assert Annotator.objects.get(pk=keyed.pk).api_key_encrypted == ""
