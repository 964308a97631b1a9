"""Refused requests are audited without letting anyone flood the append-only log: the first refusal of a client
(and actor) in a period is a row, later ones only count on it; stored paths and parameters are cut; the audit views
show the count. (The API's 401s are audited too: tests/api/test_api_token_rules.py.)"""

from __future__ import annotations

import time

import pytest
from django.test import Client

from audit.models import AuditLog
from audit.services import audited
from tests.api.conftest import TokenClient, make_token

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def inside_one_period(settings):
    """A test's refusals fall in one period: none starts while it runs (periods start at multiples of their
    length, so a test that began just before a boundary would see two rows where it expects one)."""
    settings.AUDIT_REFUSAL_PERIOD_SECONDS = 3_600
    left = 3_600 - time.time() % 3_600
    if left < 60:
        time.sleep(left + 0.1)


def refused() -> list[AuditLog]:
    return list(AuditLog.objects.filter(action="refused").order_by("id"))


def anonymous(address: str = "203.0.113.7") -> Client:
    return Client(enforce_csrf_checks=True, REMOTE_ADDR=address)


def test_an_anonymous_flood_without_csrf_is_one_row_that_counts_it():
    browser = anonymous()
    started = time.monotonic()
    answers = {browser.post("/admin/login/", {"username": "x", "password": "y"}).status_code for _ in range(200)}
    elapsed = time.monotonic() - started

    assert answers == {403}
    [row] = refused()
    assert (row.actor, row.client_address, row.target) == ("anonymous", "203.0.113.7", "/admin/login/")
    assert row.tally.count == 200 and row.tally.requests == ["POST /admin/login/"]
    assert elapsed < 10, f"200 refusals took {elapsed:.1f} s"


def test_a_long_path_is_cut_in_the_row_and_in_its_parameters():
    anonymous().post("/admin/" + "x" * 4_000 + "/", {})

    [row] = refused()
    assert len(row.target) <= 255 and len(row.parameters["path"]) <= 201
    assert len(row.detail["error"]) <= 400 and row.parameters["path"].endswith("…")


def test_each_client_address_and_each_actor_gets_its_own_row(django_user_model):
    for address in ("203.0.113.7", "203.0.113.8", "203.0.113.7"):
        anonymous(address).post("/admin/login/", {})
    viewer = Client(REMOTE_ADDR="203.0.113.7")
    viewer.force_login(django_user_model.objects.create_user("viewer", password="pw-for-tests", is_staff=True))
    viewer.get("/admin/auth/user/")
    viewer.get("/admin/auth/group/")

    rows = {(row.actor, row.client_address): row.tally.count for row in refused()}
    assert rows == {("anonymous", "203.0.113.7"): 2, ("anonymous", "203.0.113.8"): 1, ("viewer", "203.0.113.7"): 2}
    assert set(AuditLog.objects.get(actor="viewer", action="refused").tally.requests) == {
        "GET /admin/auth/user/", "GET /admin/auth/group/"}


def test_addresses_of_one_ipv6_network_count_as_one_client():
    for host in range(1, 6):
        anonymous(f"2001:db8:1:2::{host}").post("/admin/login/", {})

    [row] = refused()
    assert row.tally.count == 5 and row.tally.client == "2001:db8:1:2::/64"


def test_a_new_period_starts_a_new_row(settings):
    settings.AUDIT_REFUSAL_PERIOD_SECONDS = 1
    anonymous().post("/admin/login/", {})
    time.sleep(1.05)
    anonymous().post("/admin/login/", {})

    assert [row.tally.count for row in refused()] == [1, 1]


def test_a_flood_from_many_addresses_stops_making_rows_past_the_cap():
    for host in range(1, 131):
        anonymous(f"198.51.100.{host}").post("/admin/login/", {})

    rows = refused()
    assert len(rows) <= 101
    assert sum(row.tally.count for row in rows) == 130
    assert any(row.tally.client == "*" for row in rows)


def test_the_audit_views_show_how_often_a_refusal_repeated(django_user_model):
    browser = anonymous()
    for _ in range(7):
        browser.post("/admin/login/", {})
    root = django_user_model.objects.create_superuser("root", password="pw-for-tests")
    admin = Client()
    admin.force_login(root)

    page = admin.get("/admin/audit/auditlog/").content.decode()
    assert "×7" in page
    row = refused()[0]
    assert "POST /admin/login/" in admin.get(f"/admin/audit/auditlog/{row.pk}/change/").content.decode()
    api = TokenClient(make_token(root, "auditor")).get("/api/v1/audit", {"action": "refused"}).json()
    assert [entry["repeated"] for entry in api["results"]] == [7]


def test_long_parameters_of_any_audit_row_are_cut():
    with audited("demo", actor="alice", parameters={"note": "x" * 10_000, "short": "kept"}):
        pass

    row = AuditLog.objects.get(action="demo")
    assert len(row.parameters["note"]) <= 1_001 and row.parameters["short"] == "kept"
