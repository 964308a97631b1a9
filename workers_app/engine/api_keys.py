"""Which API key an annotator's requests carry: its own stored key (encrypted at rest), or the environment
variable it names if that name starts with LLM_KEY_. Never any other variable, and the key is never logged,
exported or shown: the audit rows of these services say that a key changed, not what it is."""

from __future__ import annotations

import os

from django.utils import timezone

from annotation_site.secret_box import SecretUnreadable, decrypt, encrypt, reencrypt
from audit.actions import Action
from audit.actors import Actor
from audit.services import audited
from workers_app.models import Annotator
from workers_app.models.key_rules import env_name_problem, key_value_problem


class ApiKeyUnavailable(Exception):
    """The annotator's key cannot be had; calling its API without it would fail or leak another secret."""


class BadApiKey(ValueError):
    """A key staff entered is not acceptable; nothing was stored."""


def api_key_for(annotator: Annotator) -> str:
    """The key to send, or "" when the annotator has none (a local server)."""
    if annotator.api_key_encrypted:
        try:
            return decrypt(annotator.api_key_encrypted)
        except SecretUnreadable as exc:
            raise ApiKeyUnavailable(f"the stored API key of {annotator}: {exc}") from None
    if not annotator.api_key_env:
        return ""
    problem = env_name_problem(annotator.api_key_env)
    if problem:
        raise ApiKeyUnavailable(f"api_key_env of {annotator}: {problem}")
    value = os.environ.get(annotator.api_key_env)
    if not value:
        raise ApiKeyUnavailable(f"the environment variable {annotator.api_key_env} (API key of {annotator}) "
                                "is not set")
    return value


def set_api_key(annotator: Annotator, key: str, *, actor: Actor) -> None:
    """Store ``key`` encrypted; workers use it from their next call (no restart)."""
    problem = key_value_problem(key)
    with audited(Action.SET_API_KEY, actor=actor, target=str(annotator)):
        if problem:
            raise BadApiKey(problem)
        Annotator.objects.filter(pk=annotator.pk).update(api_key_encrypted=encrypt(key),
                                                          api_key_set_at=timezone.now())


def clear_api_key(annotator: Annotator, *, actor: Actor) -> None:
    with audited(Action.CLEAR_API_KEY, actor=actor, target=str(annotator)):
        Annotator.objects.filter(pk=annotator.pk).update(api_key_encrypted="", api_key_set_at=None)


def reencrypt_api_keys(*, actor: Actor) -> int:
    """Encrypt every stored key again with the current (first) encryption key, after a key rotation."""
    with audited(Action.REENCRYPT_API_KEYS, actor=actor) as entry:
        stored = Annotator.objects.exclude(api_key_encrypted="").values_list("pk", "api_key_encrypted")
        for pk, token in stored:
            Annotator.objects.filter(pk=pk).update(api_key_encrypted=reencrypt(token))
        entry.detail = {"keys": len(stored)}
    return len(stored)
