"""The web pages' own defences: where a login leads, the headers every page sends, who may read the API's schema."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import pytest
from django.contrib.auth.models import Group
from django.core.management import call_command
from django.test import Client

from tests.helpers import ROOT, run_check

pytestmark = pytest.mark.django_db


@pytest.fixture
def viewer(catalogue, django_user_model):
    call_command("seed_defaults")
    user = django_user_model.objects.create_user("vera", password="pw-for-tests", is_staff=True)
    user.groups.add(Group.objects.get(name="viewer"))
    return user


@pytest.mark.parametrize("target", ["https://evil.example/", "//evil.example/x", "javascript:alert(1)"])
def test_a_login_whose_next_is_refused_leads_to_the_workspace_not_a_404(viewer, target):
    client = Client()
    response = client.post(f"/admin/login/?next={target}", {"username": "vera", "password": "pw-for-tests",
                                                             "next": target})
    assert response.status_code == 302 and response["Location"] == "/"
    landing = client.get(response["Location"])
    assert landing.status_code == 302 and landing["Location"] == "/dashboard/"
    assert client.get(landing["Location"]).status_code == 200


# --- a strict Content-Security-Policy, pages that need nothing inline -------------------------------------------

@pytest.fixture
def root(catalogue, django_user_model) -> Client:
    from tests.helpers import make_samples
    from workers_app.fleet.rows import ensure_worker_rows
    from workers_app.models import ReviewItem, Sample

    ensure_worker_rows()
    make_samples(2)
    ReviewItem.objects.create(sample=Sample.objects.first(), reasons=["level_4"], risk=100)
    client = Client()
    client.force_login(django_user_model.objects.create_superuser("root", password="pw-for-tests"))
    return client


def pages() -> list[str]:
    from django_celery_beat.models import PeriodicTask

    from workers_app.models import ReviewItem, Sample

    return [f"/admin/django_celery_beat/periodictask/{PeriodicTask.objects.first().pk}/change/", "/dashboard/", "/dashboard/charts", "/samples/", f"/samples/{Sample.objects.first().pk}/", "/review/",
            f"/review/{ReviewItem.objects.first().pk}/", "/files/", "/runs/", "/admin/",
            "/admin/workers_app/worker/", "/admin/workers_app/host/", "/admin/workers_app/annotator/1/change/",
            "/admin/audit/auditlog/", "/api/v1/docs", "/setup/", "/setup/corpora/", "/setup/annotators/",
            "/setup/annotators/1/", "/setup/domains/", "/setup/domains/urgency/", "/setup/people/", "/setup/tokens/",
            "/quality/", "/quality/references/"]


INLINE = [
    (re.compile(r"<script(?![^>]*\bsrc=)(?![^>]*application/json)[^>]*>", re.IGNORECASE), "an inline <script>"),
    (re.compile(r"<style", re.IGNORECASE), "a <style> block"),
    (re.compile(r"\sstyle=", re.IGNORECASE), "a style attribute"),
    (re.compile(r"\son[a-z]+=", re.IGNORECASE), "an event-handler attribute"),
    (re.compile(r"javascript:", re.IGNORECASE), "a javascript: URL"),
]


def test_every_page_sends_a_strict_content_security_policy(root):
    for path in [*pages(), "/admin/login/", "/api/v1/workers"]:
        response = root.get(path)
        assert response.status_code in (200, 302), path  # the login page sends a logged-in user on
        policy = response["Content-Security-Policy"]
        assert "default-src 'self'" in policy and "script-src 'self'" in policy and "style-src 'self'" in policy
        assert "frame-ancestors 'none'" in policy and "object-src 'none'" in policy
        assert "unsafe" not in policy, policy
    assert "Content-Security-Policy" in Client().get("/admin/login/")


def test_our_pages_use_nothing_inline_that_the_policy_would_block(root):
    found = []
    for path in pages():
        html = root.get(path).content.decode()
        found += [(path, what) for pattern, what in INLINE if pattern.search(html)]
    assert found == []


def test_the_api_docs_load_their_start_up_script_from_the_site(root):
    page = root.get("/api/v1/docs").content.decode()
    [script] = re.findall(r'<script src="(/api/v1/docs\?[^"]*script[^"]*)"', page)
    response = root.get(script.replace("&amp;", "&"))
    assert response.status_code == 200 and "SwaggerUIBundle" in response.content.decode()
    assert response["Content-Type"].startswith("application/javascript")


# --- no-store where posts (or anything else a login shows) are -------------------------------------------------

def test_pages_showing_posts_are_not_stored_by_browsers_or_proxies(root):
    from workers_app.models import Sample

    sample = Sample.objects.first()
    for path in ("/samples/", f"/samples/{sample.pk}/", "/review/", "/dashboard/", "/api/v1/samples",
                 f"/admin/workers_app/sample/{sample.pk}/change/"):
        response = root.get(path)
        assert "no-store" in response["Cache-Control"], path


def test_a_token_request_is_not_stored_either(catalogue, django_user_model):
    from tests.api.conftest import TokenClient, make_token

    root = django_user_model.objects.create_superuser("root", password="pw-for-tests")
    response = TokenClient(make_token(root)).get("/api/v1/samples")
    assert response.status_code == 200 and "no-store" in response["Cache-Control"]


# --- the schema and docs need a login ---------------------------------------------------------------------------

def test_the_schema_and_the_docs_need_a_login(viewer):
    anonymous = Client()
    schema = anonymous.get("/api/v1/schema")
    assert schema.status_code == 401 and b"not_authenticated" in schema.content  # in the schema's own format
    docs = anonymous.get("/api/v1/docs")
    assert docs.status_code == 302 and docs["Location"].startswith("/admin/login/?next=/api/v1/docs")
    assert anonymous.get("/api/v1/docs?script=").status_code == 401
    logged_in = Client()
    logged_in.force_login(viewer)
    assert logged_in.get("/api/v1/schema?format=json").status_code == 200
    assert logged_in.get("/api/v1/docs").status_code == 200


# --- behind TLS: Secure cookies, HSTS, the proxy's scheme --------------------------------------------------------

def _settings_under(tmp_path, **env: str) -> dict:
    code = ("import json, django; django.setup(); from django.conf import settings as s; print(json.dumps("
            "[s.SESSION_COOKIE_SECURE, s.CSRF_COOKIE_SECURE, s.SECURE_HSTS_SECONDS, s.SECURE_PROXY_SSL_HEADER]))")
    environment = {**os.environ, "DJANGO_SETTINGS_MODULE": "annotation_site.settings", "DATA_DIR": str(tmp_path),
                   **env}
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=environment, capture_output=True,
                            text=True, check=True)
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_tls_settings_come_from_the_environment(tmp_path):
    assert _settings_under(tmp_path) == [False, False, 0, None]
    assert _settings_under(tmp_path, SECURE_COOKIES="true", HSTS_SECONDS="31536000", BEHIND_TLS_PROXY="yes") == [
        True, True, 31536000, ["HTTP_X_FORWARDED_PROTO", "https"]]


def test_bad_tls_values_and_hsts_without_secure_cookies_are_reported(tmp_path):
    result = run_check(tmp_path, HSTS_SECONDS="forever", SECURE_COOKIES="maybe")
    assert "HSTS_SECONDS='forever'" in result.stderr and "SECURE_COOKIES='maybe'" in result.stderr
    assert "annotation_site.W002" in run_check(tmp_path, HSTS_SECONDS="3600").stderr


def test_behind_a_tls_proxy_answers_carry_hsts_and_cookies_are_secure(viewer, settings):
    settings.SECURE_HSTS_SECONDS = 31536000
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    settings.SESSION_COOKIE_SECURE = settings.CSRF_COOKIE_SECURE = True
    client = Client(HTTP_X_FORWARDED_PROTO="https")
    login = client.post("/admin/login/", {"username": "vera", "password": "pw-for-tests"})
    assert login["Strict-Transport-Security"] == "max-age=31536000"
    assert login.cookies["sessionid"]["secure"] and login.cookies["csrftoken"]["secure"]  # rotated at login
