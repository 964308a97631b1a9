"""Fixtures of the HTTP API tests: staff in their roles, their tokens, and a client that sends one."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import pytest
from django.contrib.auth.models import Group
from django.core.management import call_command
from django.test import Client
from django.utils import timezone

from tests.hostile.conftest import fingerprint
from workers_app.engine.keys import redis_key

THROTTLE_KEYS = redis_key("api", "throttle", "")


def _state() -> dict:
    """The hostile cases' fingerprint, less the request budget every request spends by design."""
    found = fingerprint()
    found["redis"] = [key for key in found["redis"] if not key.startswith(THROTTLE_KEYS)]
    return found


@pytest.fixture
def unchanged() -> Callable[[], None]:
    before = _state()

    def check() -> None:
        after = _state()
        assert after == before, "the refused request changed something"

    return check


@pytest.fixture
def roles(catalogue, django_user_model) -> dict:
    call_command("seed_defaults")
    people = {}
    for name in ("viewer", "reviewer", "operator"):
        user = django_user_model.objects.create_user(name, password="pw-for-tests", is_staff=True)
        user.groups.add(Group.objects.get(name=name))
        people[name] = django_user_model.objects.get(pk=user.pk)
    return people


def make_token(user, name: str = "script", *, expires_in: timedelta = timedelta(days=30)) -> str:
    from api.tokens import create_token

    return create_token(user, name=name, expires_at=timezone.now() + expires_in, actor=user).secret


class TokenClient(Client):
    """Django's test client, sending ``Authorization: Bearer <secret>`` and JSON bodies."""

    def __init__(self, secret: str | None):
        super().__init__(HTTP_AUTHORIZATION=f"Bearer {secret}" if secret else "")

    def post_json(self, path: str, body) -> object:
        return self.post(path, body, content_type="application/json")


@pytest.fixture
def as_operator(roles) -> TokenClient:
    return TokenClient(make_token(roles["operator"], "ops-script"))


@pytest.fixture
def as_viewer(roles) -> TokenClient:
    return TokenClient(make_token(roles["viewer"], "dashboard"))
