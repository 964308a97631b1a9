"""Who may open a workspace page: logged-in staff with the page's permission (403 otherwise, audited by the
site's refusal middleware)."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps

from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.urls import reverse

View = Callable[..., HttpResponse]


def requires(*permissions: str, polled: bool = False) -> Callable[[View], View]:
    """Send anonymous visitors to the login page; refuse staff who lack any of ``permissions``. A ``polled`` view
    (fetched by a page's script) answers an anonymous request 401 instead: following a redirect to the login page
    would set a new CSRF cookie under a login form open in another tab."""

    def decorate(view: View) -> View:
        @wraps(view)
        def guarded(request: HttpRequest, *args, **kwargs) -> HttpResponse:
            user = request.user
            if not (user.is_authenticated and user.is_active and user.is_staff):
                if polled:
                    return JsonResponse({"error": "not logged in"}, status=401)
                return redirect_to_login(request.get_full_path(), reverse("admin:login"))
            if not user.has_perms(permissions):
                raise PermissionDenied(f"needs {', '.join(permissions)}")
            return view(request, *args, **kwargs)

        return guarded

    return decorate
