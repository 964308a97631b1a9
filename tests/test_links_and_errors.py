"""Samples are reachable by the external id everything names them by, and the 403, 404 and 500 pages are the
workspace's own: its layout, a way back, and (403) the permission that is missing. A refusal is one log line."""

from __future__ import annotations

import logging

import pytest
from django.contrib.auth.models import Permission
from django.urls import include, path

from admin_ops.services.roles import seed_roles
from tests.helpers import make_samples
from workers_app.models import Alert, ReviewItem, Sample
from workers_app.monitoring.review_alerts import alert_level_4_items

pytestmark = pytest.mark.django_db


def boom(request):
    raise RuntimeError("a bug in a view")


# This module doubles as a URLconf (pytest.mark.urls below): the site's URLs plus one view that fails.
urlpatterns = [path("boom/", boom), path("", include("annotation_site.urls"))]
handler403 = "workspace.errors.permission_denied"
handler404 = "workspace.errors.page_not_found"
handler500 = "workspace.errors.server_error"


@pytest.fixture
def staff_with(django_user_model, catalogue):
    def make(*codenames: str, name: str = "sam"):
        user = django_user_model.objects.create_user(name, password="pw", is_staff=True)
        user.user_permissions.add(*Permission.objects.filter(codename__in=codenames))
        return user

    return make


def sample(external_id: str) -> Sample:
    made = Sample.objects.get(pk=make_samples(1)[0])
    made.external_id = external_id
    made.save()
    return made


def test_a_sample_opens_by_its_external_id_keeping_the_query(client, staff_with):
    demo = sample("DEMO-017")
    client.force_login(staff_with("view_sample"))
    response = client.get("/samples/DEMO-017/?run=default")
    assert response.status_code == 302 and response["Location"] == f"/samples/{demo.pk}/?run=default"
    page = client.get("/samples/DEMO-017/", follow=True)
    assert page.status_code == 200 and b"Sample DEMO-017" in page.content


@pytest.mark.parametrize("external_id", ["a/b/c", "ID with spaces", "über-7", "12-34"])
def test_any_external_id_finds_its_sample(client, staff_with, external_id):
    found = sample(external_id)
    client.force_login(staff_with("view_sample"))
    assert client.get(f"/samples/{external_id}/")["Location"] == f"/samples/{found.pk}/"


def test_a_number_is_the_row_id_first_and_an_external_id_where_no_row_has_it(client, staff_with):
    digits = sample("987654")
    client.force_login(staff_with("view_sample"))
    assert client.get(f"/samples/{digits.pk}/").status_code == 200
    assert client.get("/samples/987654/")["Location"] == f"/samples/{digits.pk}/"


def test_an_unknown_external_id_is_a_404_page_in_the_workspace_layout(client, staff_with):
    client.force_login(staff_with("view_sample", "view_worker"))
    response = client.get("/samples/NOPE-1/", HTTP_REFERER="http://testserver/samples/")
    html = response.content.decode()
    assert response.status_code == 404 and "no sample with the id or external id &#x27;NOPE-1&#x27;" in html
    assert 'href="http://testserver/samples/">← Back</a>' in html and ">Dashboard</a>" in html


def test_the_sample_pages_still_need_login_and_view_sample(client, staff_with):
    sample("DEMO-017")
    assert client.get("/samples/DEMO-017/")["Location"].startswith("/admin/login/")
    client.force_login(staff_with("view_worker"))
    assert client.get("/samples/DEMO-017/").status_code == 403


def test_the_sample_an_alert_names_opens_by_that_name(client, staff_with):
    demo = sample("DEMO-017")
    ReviewItem.objects.create(sample=demo, reasons=["level_4"], risk=100)
    alert_level_4_items()
    assert "sample DEMO-017 was rated LEVEL_4" in Alert.objects.get().message
    client.force_login(staff_with("view_sample"))
    assert client.get("/samples/DEMO-017/")["Location"] == f"/samples/{demo.pk}/"


def test_a_403_names_the_missing_permission_and_the_groups_that_grant_it(client, staff_with):
    seed_roles(actor="test")
    client.force_login(staff_with("view_worker", name="wes"))
    response = client.get("/review/", HTTP_REFERER="https://elsewhere.example/phish")
    html = response.content.decode()
    assert response.status_code == 403
    assert "You are logged in as <strong>wes</strong>" in html
    assert "It needs <code>workers_app.review_sample</code> (can claim and adjudicate samples" in html
    assert "The role groups operator, reviewer grant it." in html
    assert 'href="/">← Back</a>' in html  # a foreign referer is no way back
    assert ">Dashboard</a>" in html and "<title>403 Forbidden" in html


def test_a_403_without_a_named_permission_still_says_why(client, staff_with):
    client.force_login(staff_with("view_worker", "pause_worker"))
    response = client.post("/dashboard/act", {"op": "stop", "workers": ["annotator_1_urgency"], "confirmed": "yes"})
    assert response.status_code == 403 and b"<code>workers_app.stop_worker</code>" in response.content


def test_an_unknown_page_is_a_404_with_a_way_back(client, staff_with):
    client.force_login(staff_with("view_worker"))
    response = client.get("/no/such/page/")
    assert response.status_code == 404
    assert b"There is no page at <code>/no/such/page/</code>" in response.content and b"Start page" in response.content


@pytest.mark.urls(__name__)
def test_a_server_error_is_a_500_page_in_the_layout(client, staff_with):
    client.raise_request_exception = False
    client.force_login(staff_with("view_worker"))
    response = client.get("/boom/")
    assert response.status_code == 500
    assert b"Something went wrong on our side" in response.content and b">Dashboard</a>" in response.content
    assert b"a bug in a view" not in response.content  # no detail to the visitor; the log has it


def test_a_refusal_is_logged_as_one_line_without_a_traceback(client, staff_with, caplog):
    client.force_login(staff_with("view_worker"))
    with caplog.at_level(logging.WARNING, logger="django.request"):
        client.get("/review/")
    [record] = [r for r in caplog.records if r.name == "django.request"]
    assert record.getMessage() == "Forbidden (Permission denied): /review/" and record.exc_info is None


@pytest.mark.urls(__name__)
def test_a_server_error_keeps_its_traceback_in_the_log(client, staff_with, caplog):
    client.raise_request_exception = False
    client.force_login(staff_with("view_worker"))
    with caplog.at_level(logging.ERROR, logger="django.request"):
        client.get("/boom/")
    [record] = [r for r in caplog.records if r.name == "django.request"]
    assert record.exc_info is not None
