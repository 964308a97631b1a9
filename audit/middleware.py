"""Every refused request becomes a failed ``refused`` audit row; Django still answers 403 (or 400).

Goes after AuthenticationMiddleware (it needs ``request.user``). It also tells signal receivers and forms who acts
in the request (audit.request_context).
"""

from __future__ import annotations

from collections.abc import Callable

from django.core.exceptions import PermissionDenied, SuspiciousOperation
from django.http import HttpRequest, HttpResponse

from .actions import Action
from .request_context import client_address, request_actor, serving
from .services import record_refusal

# Set on a request whose refusal is already recorded, so that its 403 answer is not recorded twice.
RECORDED = "_audit_refusal_recorded"


class AuditRefusals:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        with serving(request):
            response = self.get_response(request)
        # A 403 that no PermissionDenied explains: a view or middleware (CSRF) answered it directly.
        if response.status_code == 403 and not getattr(request, RECORDED, False):
            record_request_refusal(request, f"answered {response.status_code} {response.reason_phrase}")
        return response

    def process_exception(self, request: HttpRequest, exception: Exception) -> None:
        # SuspiciousOperation: Django answers 400, e.g. an admin list asked to filter by a lookup it does not offer.
        if isinstance(exception, (PermissionDenied, SuspiciousOperation)):
            record_request_refusal(request, str(exception) or "permission denied")
            setattr(request, RECORDED, True)


def record_request_refusal(request: HttpRequest, reason: str) -> None:
    record_refusal(Action.REFUSED, actor=request_actor(request), reason=f"{request.method} {request.path}: {reason}",
                   target=request.path,
                   parameters={"path": request.path, "method": request.method},
                   client_address=client_address(request))
