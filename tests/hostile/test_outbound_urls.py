"""URLs staff set (an annotator's base URL, an alert webhook) may not reach the server's own network: refused when
saved with a reason that names the part at fault, and refused again when a connection is made, after the name is
resolved, so a name that changes its address later reaches nothing either."""

from __future__ import annotations

import html
import json
import logging
import socket
from urllib.parse import urlsplit

import pytest
from django.core.exceptions import ValidationError
from django.forms.models import model_to_dict
from django.test import override_settings
from django.urls import reverse

from annotation_site.outbound import OutboundRefused, check_url, policy_client
from tests.helpers import make_samples
from workers_app.engine.annotate import Result, annotate_sample
from workers_app.engine.keys import WorkerKey
from workers_app.models import Alert, AlertChannel, Annotator, MalformedAttempt, Outcome
from workers_app.monitoring.alerts import Incident, sync_alerts

pytestmark = pytest.mark.django_db

URGENCY = WorkerKey(1, "urgency")
LOCAL_LLM = "http://127.0.0.1:8081/v1"
LOOPBACK = "a loopback address; set OUTBOUND_ALLOW to allow it"
PRIVATE = "a private address; set OUTBOUND_ALLOW to allow it"

REFUSED = [
    pytest.param("http://169.254.169.254/latest/meta-data/", "169.254.169.254 is a link-local address", id="metadata"),
    pytest.param("http://127.0.0.1:8000/v1", f"127.0.0.1 is {LOOPBACK}", id="loopback"),
    pytest.param("http://localhost:8000/v1", f"localhost resolves to 127.0.0.1, {LOOPBACK}", id="localhost"),
    pytest.param("http://foo.localhost/v1", f"foo.localhost resolves to 127.0.0.1, {LOOPBACK}", id="sub-localhost"),
    pytest.param("http://LOCALHOST./v1", f"localhost. resolves to 127.0.0.1, {LOOPBACK}", id="localhost-dot"),
    pytest.param("http://ⓛⓞⓒⓐⓛⓗⓞⓢⓣ:8000/v1", f"ⓛⓞⓒⓐⓛⓗⓞⓢⓣ resolves to 127.0.0.1, {LOOPBACK}",
                 id="localhost-in-circled-letters"),
    pytest.param("http://[::1]:8000/v1", f"::1 is {LOOPBACK}", id="ipv6-loopback"),
    pytest.param("http://[::]:8000/v1", ":: is an unspecified address", id="ipv6-unspecified"),
    pytest.param("http://[::ffff:127.0.0.1]/v1", f"::ffff:127.0.0.1 is 127.0.0.1, {LOOPBACK}", id="ipv4-mapped"),
    pytest.param("http://[::ffff:169.254.169.254]/", "is 169.254.169.254, a link-local address", id="mapped-metadata"),
    pytest.param("http://10.1.2.3/v1", f"10.1.2.3 is {PRIVATE}", id="ten"),
    pytest.param("http://172.16.5.4/v1", f"172.16.5.4 is {PRIVATE}", id="172-16"),
    pytest.param("http://192.168.1.10/v1", f"192.168.1.10 is {PRIVATE}", id="192-168"),
    pytest.param("http://[fd00::1]/v1", f"fd00::1 is {PRIVATE}", id="ipv6-private"),
    pytest.param("http://[fe80::1]/v1", "fe80::1 is a link-local address", id="ipv6-link-local"),
    pytest.param("http://0.0.0.0:8000/", "0.0.0.0 is an unspecified address", id="unspecified"),
    pytest.param("http://224.0.0.1/", "224.0.0.1 is a multicast address", id="multicast"),
    pytest.param("http://240.0.0.1/", "240.0.0.1 is a reserved address", id="reserved"),
    pytest.param("http://100.64.0.1/", "100.64.0.1 is not a public address", id="carrier-grade-nat"),
    pytest.param("http://2130706433/", f"2130706433 is 127.0.0.1, {LOOPBACK}", id="decimal"),
    pytest.param("http://0x7f000001/", f"0x7f000001 is 127.0.0.1, {LOOPBACK}", id="hex"),
    pytest.param("http://0x7f.1/", f"0x7f.1 is 127.0.0.1, {LOOPBACK}", id="short-hex"),
    pytest.param("http://0177.0.0.1/", f"0177.0.0.1 is 127.0.0.1, {LOOPBACK}", id="octal"),
    pytest.param("http://0xa9.0xfe.0xa9.0xfe/", "is 169.254.169.254, a link-local address", id="hex-metadata"),
    pytest.param("gopher://example.com:70/_SET", "the scheme 'gopher' is not allowed; only http and https URLs are",
                 id="gopher"),
    pytest.param("file:///etc/passwd", "the scheme 'file' is not allowed", id="file"),
    pytest.param("ftp://example.com/models", "the scheme 'ftp' is not allowed", id="ftp"),
    pytest.param("javascript:alert(1)", "the scheme 'javascript' is not allowed", id="javascript"),
    pytest.param("api.openai.com/v1", "the URL has no scheme; only http and https URLs are allowed", id="no-scheme"),
    pytest.param("please use the usual server", "the URL has no scheme", id="free-text"),
    pytest.param("http:///v1", "the URL names no host", id="missing-host"),
    pytest.param("http://admin:hunter2@example.com/v1", "credentials (user:password@) in the URL are not allowed",
                 id="credentials"),
    pytest.param("http://example.com/v1\nHost: 127.0.0.1", "whitespace or control characters", id="newline"),
    pytest.param("http://example.com/v1\t", "whitespace or control characters", id="tab"),
    pytest.param("http://exa\x00mple.com/v1", "whitespace or control characters", id="nul"),
    pytest.param("http://example.com/" + "a" * 2100, "the URL is 2119 characters long; at most 2000", id="over-long"),
    pytest.param("http://[::1/v1", "not a valid URL", id="broken-ipv6"),
    pytest.param("http://example.com:99999/v1", "not a valid URL", id="port-out-of-range"),
]


@pytest.fixture
def resolver(monkeypatch):
    """The OS resolver answers for the names a test sets (an empty list: no such name); other names as always."""
    answers: dict[str, list[str]] = {}
    real = socket.getaddrinfo

    def getaddrinfo(host, port, *args, **kwargs):
        if host not in answers:
            return real(host, port, *args, **kwargs)
        if not answers[host]:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return [(socket.AF_INET6 if ":" in ip else socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP, "",
                 (ip, port, 0, 0) if ":" in ip else (ip, port)) for ip in answers[host]]

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return answers


def _change_form(annotator: Annotator, **changes) -> dict:
    """The annotator's change form as a browser posts it, with ``changes``."""
    values = {name: value for name, value in model_to_dict(annotator).items() if value not in (None, False)}
    return {**values, **({"enabled": "on"} if annotator.enabled else {}), **changes}


@pytest.fixture
def staff_client(staff, client):
    """Logged in before ``unchanged`` takes its fingerprint (a login records itself)."""
    client.force_login(staff)
    return client


def _field_errors(response, field: str) -> str:
    """The errors the admin page shows for ``field`` (the refused value itself stays in the input, for staff)."""
    assert response.status_code == 200, "the admin accepted the form"
    errors = " ".join(response.context["adminform"].form.errors.get(field, []))
    assert errors and errors in html.unescape(response.content.decode())
    return errors


@pytest.mark.parametrize(("url", "reason"), REFUSED)
def test_it_refuses_a_base_url_that_reaches_a_forbidden_place(catalogue, unchanged, url, reason):
    annotator = Annotator.objects.get(number=1)
    annotator.base_url = url
    with override_settings(OUTBOUND_ALLOW=[], LOCAL_LLM_URL=LOCAL_LLM):
        with pytest.raises(OutboundRefused) as refused:
            check_url(url)
        with pytest.raises(ValidationError) as invalid:
            annotator.full_clean()  # what every way of saving an annotator runs

    assert reason in str(refused.value)
    assert str(refused.value) in invalid.value.message_dict["base_url"]
    assert "hunter2" not in str(refused.value)
    unchanged()


@pytest.mark.parametrize(("url", "reason"), [
    pytest.param("http://169.254.169.254/latest", "169.254.169.254 is a link-local address", id="metadata"),
    pytest.param("http://localhost:6379/v1", f"localhost resolves to 127.0.0.1, {LOOPBACK}", id="localhost"),
    pytest.param("http://[::1]:8000/v1", f"::1 is {LOOPBACK}", id="ipv6-loopback"),
])
def test_the_annotator_page_shows_the_refusal_and_saves_nothing(catalogue, staff_client, unchanged, url, reason):
    annotator = Annotator.objects.get(number=1)
    with override_settings(OUTBOUND_ALLOW=[]):
        response = staff_client.post(reverse("admin:workers_app_annotator_change", args=[annotator.pk]),
                               _change_form(annotator, base_url=url))

    assert reason in _field_errors(response, "base_url")
    unchanged()


@pytest.mark.parametrize(("url", "reason"), [
    pytest.param("http://169.254.169.254/hooks/T0KEN", "169.254.169.254 is a link-local address", id="metadata"),
    pytest.param("https://user:hunter2@hooks.example.com/T0KEN", "credentials (user:password@)", id="credentials"),
    pytest.param("http://[::1]:9000/T0KEN", f"::1 is {LOOPBACK}", id="loopback"),
])
def test_it_refuses_an_alert_webhook_that_reaches_a_forbidden_place(catalogue, staff_client, unchanged, url, reason):
    with override_settings(OUTBOUND_ALLOW=[]):
        response = staff_client.post(reverse("admin:workers_app_alertchannel_add"),
                               {"kind": "webhook", "target": url, "enabled": "on"})

    errors = _field_errors(response, "target")
    assert reason in errors and "hunter2" not in errors
    assert not AlertChannel.objects.exists()
    unchanged()


def test_a_name_that_resolves_to_a_private_address_is_refused_when_saved(catalogue, resolver):
    resolver["llm.corp.test"] = ["93.184.216.34", "10.0.0.7"]
    with override_settings(OUTBOUND_ALLOW=[]), pytest.raises(OutboundRefused) as refused:
        check_url("https://llm.corp.test/v1")
    assert str(refused.value) == f"https://llm.corp.test/v1: llm.corp.test resolves to 10.0.0.7, {PRIVATE}"


@pytest.mark.parametrize(("allow", "url"), [
    pytest.param(["10.0.0.0/8"], "http://10.1.2.3:8000/v1", id="by-cidr"),
    pytest.param(["10.1.2.3"], "http://10.1.2.3:8000/v1", id="by-ip"),
    pytest.param(["fd00::/8"], "http://[fd00::1]/v1", id="by-ipv6-cidr"),
    pytest.param(["127.0.0.0/8"], "http://[::ffff:127.0.0.1]:8000/v1", id="mapped-by-ipv4-cidr"),
    pytest.param(["llm.corp.test"], "http://llm.corp.test/v1", id="by-host-name"),
    pytest.param(["LLM.corp.test."], "http://llm.corp.test/v1", id="by-host-name-any-case"),
    pytest.param(["localhost"], "http://localhost:9000/v1", id="localhost-by-name"),
    pytest.param([], LOCAL_LLM, id="the-local-model-server"),
    pytest.param([], "http://93.184.216.34/v1", id="a-public-ip"),
    pytest.param([], "https://api.unresolvable.test/v1", id="a-name-without-dns-now"),
])
def test_it_accepts_what_the_policy_allows_without_connecting(catalogue, resolver, monkeypatch, allow, url):
    resolver["llm.corp.test"] = ["10.0.0.7"]
    resolver["api.unresolvable.test"] = []

    def no_connection(*args, **kwargs):
        raise AssertionError("check_url connected somewhere")

    monkeypatch.setattr(socket, "create_connection", no_connection)
    with override_settings(OUTBOUND_ALLOW=allow, LOCAL_LLM_URL=LOCAL_LLM):
        check_url(url)


def test_only_the_local_model_servers_own_port_is_allowed(catalogue):
    with override_settings(OUTBOUND_ALLOW=[], LOCAL_LLM_URL=LOCAL_LLM), pytest.raises(OutboundRefused) as refused:
        check_url("http://127.0.0.1:6379/v1")
    assert f"127.0.0.1 is {LOOPBACK}" in str(refused.value)


def _http_base_url(fake_llm, host: str) -> str:
    return f"http://{host}:{urlsplit(fake_llm.url).port}/v1"


def test_a_name_that_rebinds_to_loopback_after_saving_reaches_nothing(http_annotator, fake_llm, resolver):
    url = _http_base_url(fake_llm, "rebind.test")
    resolver["rebind.test"] = ["93.184.216.34"]
    [sample] = make_samples(1)
    with override_settings(OUTBOUND_ALLOW=[]):
        http_annotator.base_url = url
        http_annotator.full_clean()  # a public address when staff save it
        http_annotator.save()
        resolver["rebind.test"] = ["127.0.0.1"]  # and loopback when the worker calls
        result = annotate_sample(sample, URGENCY, worker="w")

    assert result is Result.BLOCKED
    port = urlsplit(fake_llm.url).port
    assert Annotator.objects.get(number=1).backend_error == (
        f"the outbound policy refuses rebind.test:{port}: rebind.test resolves to 127.0.0.1, {LOOPBACK}")
    assert fake_llm.requests == []
    assert not Outcome.objects.exists() and not MalformedAttempt.objects.exists()


def test_a_name_with_one_loopback_address_among_public_ones_reaches_nothing(http_annotator, fake_llm, resolver):
    resolver["mixed.test"] = ["93.184.216.34", "127.0.0.1"]
    Annotator.objects.filter(number=1).update(base_url=_http_base_url(fake_llm, "mixed.test"))
    [sample] = make_samples(1)
    with override_settings(OUTBOUND_ALLOW=[]):
        assert annotate_sample(sample, URGENCY, worker="w") is Result.BLOCKED
    assert "mixed.test resolves to 127.0.0.1, a loopback address" in Annotator.objects.get(number=1).backend_error
    assert fake_llm.requests == []


def test_a_loopback_base_url_stored_without_validation_is_refused_when_called(http_annotator, fake_llm):
    [sample] = make_samples(1)
    with override_settings(OUTBOUND_ALLOW=[]):
        assert annotate_sample(sample, URGENCY, worker="w") is Result.BLOCKED
    assert f"127.0.0.1 is {LOOPBACK}" in Annotator.objects.get(number=1).backend_error
    assert fake_llm.requests == [] and not Outcome.objects.exists()


def test_the_local_model_server_is_reached_without_any_exception_configured(http_annotator, fake_llm):
    [sample] = make_samples(1)
    with override_settings(OUTBOUND_ALLOW=[], LOCAL_LLM_URL=fake_llm.url):
        assert annotate_sample(sample, URGENCY, worker="w") is Result.STORED
    assert len(fake_llm.requests) == 1


def test_a_proxy_named_in_the_environment_cannot_carry_the_calls_elsewhere(http_annotator, fake_llm, monkeypatch):
    for variable in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "all_proxy"):
        monkeypatch.setenv(variable, "http://10.255.255.1:3128")
    [sample] = make_samples(1)
    assert annotate_sample(sample, URGENCY, worker="w") is Result.STORED
    assert len(fake_llm.requests) == 1


@pytest.mark.parametrize("setting", ["follow_redirects", "trust_env", "transport", "mounts", "proxy"])
def test_a_policy_client_cannot_be_built_around_the_policy(setting):
    with pytest.raises(TypeError, match=f"policy_client\\(\\) decides {setting} itself"):
        policy_client(**{setting: None})


def _token_free(text: str) -> bool:
    return "T0KEN" not in text and "s1gnature" not in text


def test_an_alert_webhook_to_a_forbidden_address_is_not_called_and_its_token_never_recorded(catalogue, fake_llm,
                                                                                             caplog):
    hook = f"{fake_llm.url}/hooks/T0KEN-123?sig=s1gnature"
    with override_settings(OUTBOUND_ALLOW=[], ALERT_WEBHOOK_URL=hook, ALERT_EMAILS=[]), \
            caplog.at_level(logging.DEBUG):
        sync_alerts([Incident(key="test:hook", kind="test", message="a test incident")])

    [delivery] = Alert.objects.get(key="test:hook").deliveries
    assert delivery["ok"] is False and delivery["error"] == f"127.0.0.1 is {LOOPBACK}"
    assert delivery["target"] == f"http://127.0.0.1:{urlsplit(fake_llm.url).port}/…"
    assert _token_free(json.dumps(delivery)) and _token_free(caplog.text)
    assert fake_llm.requests == []


def test_an_alert_webhook_that_rebinds_after_saving_is_not_called(catalogue, fake_llm, resolver, caplog):
    resolver["hooks.test"] = ["93.184.216.34"]
    hook = f"{_http_base_url(fake_llm, 'hooks.test')}/T0KEN"
    with override_settings(OUTBOUND_ALLOW=[], ALERT_EMAILS=[], ALERT_WEBHOOK_URL=""), caplog.at_level(logging.DEBUG):
        channel = AlertChannel(kind="webhook", target=hook)
        channel.full_clean()
        channel.save()
        resolver["hooks.test"] = ["127.0.0.1"]
        sync_alerts([Incident(key="test:rebind", kind="test", message="a test incident")])

    [delivery] = Alert.objects.get(key="test:rebind").deliveries
    assert delivery["ok"] is False and "hooks.test resolves to 127.0.0.1, a loopback address" in delivery["error"]
    assert _token_free(json.dumps(delivery)) and _token_free(caplog.text)
    assert fake_llm.requests == []
