"""Creating, revoking and checking personal API tokens: each change is one audited service."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils import timezone

from audit.actions import Action
from audit.actors import Actor, actor_name
from audit.services import audited

from .models import ApiToken

SCHEME = "afc"
MAX_LIFETIME = timedelta(days=366)
# last_used_at is written at most this often per token, not on every request.
LAST_USED_RESOLUTION = timedelta(minutes=1)
ACTOR_CHARS = 150  # AuditLog.actor


class TokenRefused(Exception):
    """Why a presented token does not authenticate: ``code`` is the API's error code."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class NewToken:
    token: ApiToken
    secret: str  # shown once; never stored


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def create_token(owner: AbstractBaseUser, *, name: str, expires_at: datetime, actor: Actor) -> NewToken:
    """A new token for ``owner``. Staff other than superusers make tokens only for themselves: a token carries its
    owner's permissions, so making one for someone else would borrow theirs."""
    with audited(Action.CREATE_API_TOKEN, actor=actor, target=owner.get_username(),
                 parameters={"name": name, "expires_at": expires_at.isoformat()}) as entry:
        if not isinstance(actor, str) and actor.pk != owner.pk and not actor.is_superuser:
            raise PermissionDenied("only a superuser may make a token for another user")
        now = timezone.now()
        if not now < expires_at <= now + MAX_LIFETIME:
            raise ValidationError({"expires_at": f"must be in the future and at most {MAX_LIFETIME.days} days away"})
        prefix = secrets.token_hex(6)
        secret = f"{SCHEME}_{prefix}_{secrets.token_urlsafe(32)}"
        token = ApiToken(user=owner, name=name, prefix=prefix, digest=_digest(secret), expires_at=expires_at)
        token.full_clean()
        token.save()
        entry.detail = {"token": prefix}
    return NewToken(token, secret)


def revoke_tokens(tokens: list[ApiToken], *, actor: Actor) -> int:
    """Revoke each token that is not revoked yet; the number revoked."""
    live = [t for t in tokens if t.revoked_at is None]
    if not live:
        return 0
    with audited(Action.REVOKE_API_TOKEN, actor=actor, targets=[f"{t.user.get_username()}:{t.name}" for t in live],
                 parameters={"tokens": [t.prefix for t in live]}):
        now = timezone.now()
        ApiToken.objects.filter(pk__in=[t.pk for t in live], revoked_at__isnull=True).update(revoked_at=now)
        for token in live:
            token.revoked_at = now
    return len(live)


def authenticate_secret(secret: str) -> ApiToken:
    """The live token this secret is, or TokenRefused saying why not (without telling which part was wrong)."""
    scheme, _, rest = secret.partition("_")
    prefix, _, _ = rest.partition("_")
    token = (ApiToken.objects.select_related("user").filter(prefix=prefix).first()
             if scheme == SCHEME and prefix else None)
    if token is None or not hmac.compare_digest(token.digest, _digest(secret)):
        raise TokenRefused("invalid_token", "the token is not valid")
    now = timezone.now()
    if token.revoked_at is not None:
        raise TokenRefused("token_revoked", f"the token '{token.name}' was revoked")
    if token.expires_at <= now:
        raise TokenRefused("token_expired", f"the token '{token.name}' expired at {token.expires_at:%Y-%m-%d %H:%M} UTC")
    if not token.user.is_active:
        raise TokenRefused("invalid_token", "the token's owner is inactive")
    if token.last_used_at is None or token.last_used_at < now - LAST_USED_RESOLUTION:
        with transaction.atomic():
            ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
    return token


def token_actor(token: ApiToken) -> str:
    """How audit rows name a request made with a token: its owner, and which of the owner's tokens."""
    return f"{actor_name(token.user)} (token {token.name})"[:ACTOR_CHARS]
