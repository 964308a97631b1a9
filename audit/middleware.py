"""Every refused request becomes a failed ``refused`` audit row (folded per client and period: audit.refusals);
Django still answers 401, 403 or 400.

Goes after AuthenticationMiddleware (it needs ``request.user``). It also tells signal receivers and forms who acts
in the request (audit.request_context).
"""

from __future__ import annotations

from collections.abc import Callable

from django.core.exceptions import PermissionDenied, SuspiciousOperation
from django.http import HttpRequest, HttpResponse

from .refusals import record_request_refused
from .request_context import client_address, request_actor, serving

# Set on a request whose refusal is already recorded, so that its 403 answer is not recorded twice.
RECORDED = "_audit_refusal_recorded"
# Why a request was refused, set by code that answers 401 or 403 itself (an API token's authentication).
REASON = "_audit_refusal_reason"
REFUSED_STATUSES = (401, 403)


def explain_refusal(request: HttpRequest, reason: str) -> None:
    """Say why this request is about to be refused; its audit row gives the reason."""
    setattr(request, REASON, reason)


class AuditRefusals:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        with serving(request):
            response = self.get_response(request)
        # A refusal that no exception explains: a view or middleware (CSRF, the API's authentication) answered it.
        if response.status_code in REFUSED_STATUSES and not getattr(request, RECORDED, False):
            answered = f"answered {response.status_code} {response.reason_phrase}"
            reason = getattr(request, REASON, "")
            record_request_refusal(request, f"{answered} ({reason})" if reason else answered)
        return response

    def process_exception(self, request: HttpRequest, exception: Exception) -> None:
        # SuspiciousOperation: Django answers 400, e.g. an admin list asked to filter by a lookup it does not offer.
        if isinstance(exception, (PermissionDenied, SuspiciousOperation)):
            record_request_refusal(request, str(exception) or "permission denied")
            setattr(request, RECORDED, True)


def record_request_refusal(request: HttpRequest, reason: str) -> None:
    record_request_refused(actor=request_actor(request), client_address=client_address(request),
                           method=request.method or "", path=request.path, reason=reason)
