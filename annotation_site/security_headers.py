"""Headers every answer carries: a strict Content-Security-Policy, and ``no-store`` for anyone logged in.

The pages load scripts, styles and images from this site only and use no inline script or style (keep it so: the
policy would block them), so an injected ``<script>`` runs nowhere. What a logged-in user sees (posts, labels, the
audit log, a new token) must not stay in a browser's or a proxy's cache: every answer to an authenticated request,
a session's or an API token's, is ``Cache-Control: no-store, private``.
"""

from __future__ import annotations

from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.utils.cache import patch_cache_control


class SecurityHeaders:
    """Goes after AuthenticationMiddleware: it needs to know whether the request is a logged-in user's (the API
    sets ``request.user`` from a token while the view runs, before this sees the answer)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        response.headers.setdefault("Content-Security-Policy", settings.CONTENT_SECURITY_POLICY)
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated:
            patch_cache_control(response, no_store=True, private=True)
        return response
