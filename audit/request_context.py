"""Who acts in the request being served, for audit rows written where the request is out of reach (signal
receivers, forms). ``audit.middleware.AuditRefusals`` sets it for every request; outside one the actor is "system"
(a command, a Celery task)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from django.http import HttpRequest

from .actors import Actor

_request: ContextVar[HttpRequest | None] = ContextVar("audit_request", default=None)


def client_address(request: HttpRequest | None) -> str | None:
    if request is None:
        return None
    return request.META.get("REMOTE_ADDR") or None


def request_actor(request: HttpRequest) -> Actor:
    user = getattr(request, "user", None)
    return user if user is not None and user.is_authenticated else "anonymous"


@contextmanager
def serving(request: HttpRequest) -> Iterator[None]:
    token = _request.set(request)
    try:
        yield
    finally:
        _request.reset(token)


def current_actor() -> Actor:
    request = _request.get()
    return "system" if request is None else request_actor(request)


def current_client_address() -> str | None:
    return client_address(_request.get())
