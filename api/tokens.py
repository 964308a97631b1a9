"""Creating, revoking and checking personal API tokens: each change is one audited service.

The rules every page that shows or makes tokens reuses: who may own one (``allowed_in``: an active staff account
with a role, a permission or superuser status), for whom a user may make one (``token_owners``: a superuser for
anyone allowed in, everyone else for themself), how many live tokens one user may have (API_MAX_TOKENS_PER_USER),
and that an account which is no longer allowed in loses its tokens (``revoke_if_not_allowed_in``, called whenever an
account or its groups change: api.receivers)."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import Q, QuerySet
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


def accounts_allowed_in() -> QuerySet:
    """Accounts that may use the console at all: active staff who are superusers or hold a role or a permission."""
    return get_user_model().objects.filter(
        Q(is_active=True, is_staff=True)
        & (Q(is_superuser=True) | Q(groups__isnull=False) | Q(user_permissions__isnull=False))).distinct()


def allowed_in(user: AbstractBaseUser) -> bool:
    if not (user.is_active and user.is_staff):
        return False
    return user.is_superuser or accounts_allowed_in().filter(pk=user.pk).exists()


def token_owners(actor: AbstractBaseUser) -> QuerySet:
    """For whom ``actor`` may make a token, and whose names a token page may show them: a superuser anyone allowed
    in; anyone else only themself (a token carries its owner's permissions)."""
    owners = accounts_allowed_in().order_by(get_user_model().USERNAME_FIELD)
    return owners if actor.is_superuser else owners.filter(pk=actor.pk)


def visible_tokens(viewer: AbstractBaseUser) -> QuerySet[ApiToken]:
    """The tokens a page may list for ``viewer``: every token for a superuser, their own for anyone else."""
    tokens = ApiToken.objects.select_related("user")
    return tokens if viewer.is_superuser else tokens.filter(user=viewer)


def live_tokens(owner: AbstractBaseUser) -> QuerySet[ApiToken]:
    return ApiToken.objects.filter(user=owner, revoked_at__isnull=True, expires_at__gt=timezone.now())


def create_token(owner: AbstractBaseUser, *, name: str, expires_at: datetime, actor: Actor) -> NewToken:
    """A new token for ``owner``. Staff other than superusers make tokens only for themselves: a token carries its
    owner's permissions, so making one for someone else would borrow theirs. An owner has at most
    API_MAX_TOKENS_PER_USER live tokens (their requests share one budget anyway: api.throttling)."""
    with audited(Action.CREATE_API_TOKEN, actor=actor, target=owner.get_username(),
                 parameters={"name": name, "expires_at": expires_at.isoformat()}) as entry:
        if not isinstance(actor, str) and actor.pk != owner.pk and not actor.is_superuser:
            raise PermissionDenied("only a superuser may make a token for another user")
        if not allowed_in(owner):
            raise ValidationError({"user": f"{owner.get_username()} is not allowed in (inactive, not staff, or "
                                           "without any role or permission): no token is made for them"})
        # The owner's row is locked so that two requests at once cannot both pass the count.
        get_user_model().objects.select_for_update().filter(pk=owner.pk).first()
        most = settings.API_MAX_TOKENS_PER_USER
        if live_tokens(owner).count() >= most:
            raise ValidationError(f"{owner.get_username()} has {most} live tokens, the most one user may have: "
                                  "revoke one first")
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


def revoke_tokens(tokens: list[ApiToken], *, actor: Actor, reason: str = "") -> int:
    """Revoke each token that is not revoked yet; the number revoked."""
    live = [t for t in tokens if t.revoked_at is None]
    if not live:
        return 0
    with audited(Action.REVOKE_API_TOKEN, actor=actor, targets=[f"{t.user.get_username()}:{t.name}" for t in live],
                 parameters={"tokens": [t.prefix for t in live], **({"reason": reason} if reason else {})}):
        now = timezone.now()
        ApiToken.objects.filter(pk__in=[t.pk for t in live], revoked_at__isnull=True).update(revoked_at=now)
        for token in live:
            token.revoked_at = now
    return len(live)


def revoke_if_not_allowed_in(user: AbstractBaseUser, *, actor: Actor) -> int:
    """An account that was demoted (staff status, activity, its last role or permission taken away) loses its
    tokens for good: promoting it again later does not bring them back."""
    if allowed_in(user):
        return 0
    tokens = list(ApiToken.objects.filter(user=user, revoked_at__isnull=True).select_related("user"))
    return revoke_tokens(tokens, actor=actor, reason="the owner is no longer allowed in")


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
    if not allowed_in(token.user):
        raise TokenRefused("invalid_token", "the token's owner is no longer allowed in (inactive, not staff, or "
                                            "without any role)")
    if token.last_used_at is None or token.last_used_at < now - LAST_USED_RESOLUTION:
        with transaction.atomic():
            ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
    return token


def token_actor(token: ApiToken) -> str:
    """How audit rows name a request made with a token: its owner, and which of the owner's tokens."""
    return f"{actor_name(token.user)} (token {token.name})"[:ACTOR_CHARS]
