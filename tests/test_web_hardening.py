"""The web pages' own defences: where a login leads, the headers every page sends, who may read the API's schema."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group
from django.core.management import call_command
from django.test import Client

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
