"""``Authorization: Bearer <token>``: a personal token stands for its owner."""

from __future__ import annotations

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework.authentication import BaseAuthentication, get_authorization_header
from rest_framework.exceptions import AuthenticationFailed
from rest_framework.request import Request

from audit.actors import Actor
from audit.middleware import explain_refusal

from .models import ApiToken
from .tokens import TokenRefused, authenticate_secret, token_actor

MAX_HEADER_CHARS = 200


class BearerTokenAuthentication(BaseAuthentication):
    def authenticate(self, request: Request) -> tuple | None:
        header = get_authorization_header(request)
        scheme, _, secret = header.partition(b" ")
        if scheme.lower() != b"bearer":
            return None  # not ours: the session may still authenticate the request
        if not secret.strip() or len(header) > MAX_HEADER_CHARS:
            raise _refused(request, "invalid_token", "the Authorization header must be 'Bearer <token>'")
        try:
            token = authenticate_secret(secret.strip().decode("ascii"))
        except UnicodeDecodeError:
            raise _refused(request, "invalid_token", "the token is not valid") from None
        except TokenRefused as exc:
            raise _refused(request, exc.code, str(exc)) from None
        return token.user, token

    def authenticate_header(self, request: Request) -> str:
        # Present, so that an unauthenticated request is answered 401 (with this challenge), not 403.
        return 'Bearer realm="api"'


def _refused(request: Request, code: str, message: str) -> AuthenticationFailed:
    explain_refusal(request._request, f"{code}: {message}")  # the 401's audit row says which token and why
    return AuthenticationFailed(message, code=code)


def acting(request: Request) -> Actor:
    """Who a request acts as in audit rows: the session's user, or a token's owner with the token's name."""
    if isinstance(request.auth, ApiToken):
        return token_actor(request.auth)
    return request.user


class BearerTokenScheme(OpenApiAuthenticationExtension):
    target_class = "api.authentication.BearerTokenAuthentication"
    name = "bearerAuth"

    def get_security_definition(self, auto_schema):
        return {"type": "http", "scheme": "bearer", "description": "a personal API token made in the admin"}
