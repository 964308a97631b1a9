"""The site's 403, 404 and 500 pages, in the workspace's layout with a way back. A 403 names the permission the
page needs and the role groups that grant it, so staff know what to ask an administrator for."""

from __future__ import annotations

import logging
import re

from django.contrib.auth.models import Group, Permission
from django.http import HttpRequest, HttpResponse, HttpResponseServerError
from django.shortcuts import render
from django.utils.http import url_has_allowed_host_and_scheme

log = logging.getLogger(__name__)

# How our code words a refusal: PermissionDenied("needs app.codename[, app.codename ...]").
NEEDS = re.compile(r"\bneeds ([a-z_]+\.[a-z_]+(?:, [a-z_]+\.[a-z_]+)*)")
MAX_NAMED = 5
PLAIN_500 = (b"<!doctype html><html lang=en><meta charset=utf-8><title>Server error</title>"
             b"<h1>Something went wrong on our side</h1><p>The error was logged. <a href=\"/\">Back to the start</a>"
             b"</p></html>")


def _way_back(request: HttpRequest) -> str:
    """The page the visitor came from when it is one of ours, else the start page."""
    referer = request.headers.get("Referer", "")
    if referer and url_has_allowed_host_and_scheme(referer, allowed_hosts={request.get_host()},
                                                   require_https=request.is_secure()):
        return referer
    return "/"


def _needed(message: str) -> list[dict]:
    """The permissions a refusal names, with their description and the groups that grant them."""
    found = NEEDS.search(message)
    if not found:
        return []
    needed = []
    for dotted in found.group(1).split(", ")[:MAX_NAMED]:
        app_label, codename = dotted.split(".")
        permission = Permission.objects.filter(content_type__app_label=app_label, codename=codename).first()
        groups = Group.objects.filter(permissions=permission).order_by("name").values_list("name", flat=True) \
            if permission else []
        needed.append({"code": dotted, "name": permission.name if permission else "", "groups": list(groups)})
    return needed


def permission_denied(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    message = str(exception or "")
    return render(request, "403.html", {"message": message, "needed": _needed(message), "back": _way_back(request)},
                  status=403)


def page_not_found(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    # Our own Http404s say what is missing ("no sample with this id"); Django's resolver's say nothing useful.
    reason = exception.args[0] if exception and exception.args and isinstance(exception.args[0], str) else ""
    return render(request, "404.html", {"path": request.path, "reason": reason[:300], "back": _way_back(request)},
                  status=404)


def server_error(request: HttpRequest) -> HttpResponse:
    """The layout needs the user and the database, which may be what failed: then a plain page, never a second
    error."""
    try:
        return render(request, "500.html", {"back": _way_back(request)}, status=500)
    except Exception:  # whatever broke the request may break its error page too
        log.exception("the 500 page could not be drawn; a plain one was sent")
        return HttpResponseServerError(PLAIN_500)
