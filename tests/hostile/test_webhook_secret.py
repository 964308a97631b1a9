"""An alert channel's webhook URL (its path and query often are the secret) is write-only, like an API key: its
pages show ``scheme://host/…``; a new URL may be typed, the stored one is never shown again."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group, Permission
from django.core.management import call_command
from django.test import Client

from audit.models import AuditLog
from workers_app.models import AlertChannel

pytestmark = pytest.mark.django_db

SECRET_URL = "http://127.0.0.1:9/services/T0SECRETPATH/B0/XyZsecret?token=query-secret"
SECRET_PARTS = ("T0SECRETPATH", "XyZsecret", "query-secret", "services/")


@pytest.fixture
def channel(catalogue) -> AlertChannel:
    return AlertChannel.objects.create(kind=AlertChannel.Kind.WEBHOOK, target=SECRET_URL)


def staff_client(django_user_model, name: str, role: str | None = None, *permissions: str) -> Client:
    call_command("seed_defaults")
    user = django_user_model.objects.create_user(name, password="pw-for-tests", is_staff=True)
    if role:
        user.groups.add(Group.objects.get(name=role))
    user.user_permissions.add(*Permission.objects.filter(codename__in=permissions))
    client = Client()
    client.force_login(user)
    return client


def change_page(channel: AlertChannel) -> str:
    return f"/admin/workers_app/alertchannel/{channel.pk}/change/"


def test_the_change_page_shows_scheme_and_host_only(channel, django_user_model):
    operator = staff_client(django_user_model, "olga", "operator")
    page = operator.get(change_page(channel)).content.decode()
    assert "http://127.0.0.1/…" in page
    assert not any(part in page for part in SECRET_PARTS), "the stored URL is on the page"


def test_a_read_only_page_shows_scheme_and_host_only(channel, django_user_model):
    looker = staff_client(django_user_model, "lou", None, "view_alertchannel")
    page = looker.get(change_page(channel))
    assert page.status_code == 200
    assert not any(part in page.content.decode() for part in SECRET_PARTS)


def test_saving_without_a_new_url_keeps_the_stored_one(channel, django_user_model):
    operator = staff_client(django_user_model, "olga", "operator")
    response = operator.post(change_page(channel), {"kind": "webhook", "target": ""})  # turned off, URL untouched
    assert response.status_code == 302, response.content.decode()[:3000]
    channel.refresh_from_db()
    assert channel.target == SECRET_URL and not channel.enabled
    assert AuditLog.objects.get(action="admin_change", actor="olga").parameters["fields"] == ["enabled"]


def test_a_new_url_replaces_the_stored_one_and_is_not_audited_by_value(channel, django_user_model):
    operator = staff_client(django_user_model, "olga", "operator")
    new = "http://127.0.0.1:9/hooks/NEWSECRET"
    operator.post(change_page(channel), {"kind": "webhook", "target": new, "enabled": "on"})
    channel.refresh_from_db()
    assert channel.target == new
    row = AuditLog.objects.get(action="admin_change", actor="olga")
    assert "target" in row.parameters["fields"] and "NEWSECRET" not in str(row.parameters) + str(row.detail)


def test_a_new_channel_needs_its_url(catalogue, django_user_model):
    operator = staff_client(django_user_model, "olga", "operator")
    response = operator.post("/admin/workers_app/alertchannel/add/", {"kind": "webhook", "target": "",
                                                                       "enabled": "on"})
    assert response.status_code == 200 and "This field is required" in response.content.decode()
    assert not AlertChannel.objects.exists()
