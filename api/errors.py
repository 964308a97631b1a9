"""Every API error is JSON ``{"error": <stable code>, "detail": <message naming the field>}``, never a traceback.

Bad input (a body or parameter that does not validate) is 422; a body that is not JSON at all is 400.
"""

from __future__ import annotations

import logging

import redis
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.http import Http404, HttpRequest, JsonResponse
from rest_framework import exceptions, status
from rest_framework.response import Response

log = logging.getLogger(__name__)

CODES = {
    exceptions.ParseError: "malformed_request",
    exceptions.NotAuthenticated: "not_authenticated",
    exceptions.PermissionDenied: "permission_denied",
    exceptions.NotFound: "not_found",
    exceptions.MethodNotAllowed: "method_not_allowed",
    exceptions.NotAcceptable: "not_acceptable",
    exceptions.UnsupportedMediaType: "unsupported_media_type",
    exceptions.Throttled: "rate_limited",
}


class ApiError(exceptions.APIException):
    """An error with its own code and status, raised by the views: ``ApiError(404, "unknown_worker", "...")``."""

    def __init__(self, status_code: int, code: str, detail: str, **extra):
        super().__init__(detail, code)
        self.status_code = status_code
        self.extra = extra


def _flatten(detail, path: str = "") -> list[tuple[str, str]]:
    """(field path, message) pairs of a ValidationError's nested detail."""
    if isinstance(detail, dict):
        return [pair for key, value in detail.items()
                for pair in _flatten(value, f"{path}.{key}" if path else str(key))]
    if isinstance(detail, list):
        if all(not isinstance(item, (dict, list)) for item in detail):
            return [(path, str(item)) for item in detail]
        return [pair for index, item in enumerate(detail) for pair in _flatten(item, f"{path}[{index}]")]
    return [(path, str(detail))]


def _validation(exc: exceptions.ValidationError) -> Response:
    problems = _flatten(exc.detail)
    fields = [field for field, _ in problems if field and field != "non_field_errors"]
    code = f"invalid_{fields[0].split('.')[0].split('[')[0]}" if fields else "invalid_request"
    detail = "; ".join(f"{field}: {message}" if field and field != "non_field_errors" else message
                       for field, message in problems)
    return Response({"error": code, "detail": detail}, status=status.HTTP_422_UNPROCESSABLE_ENTITY)


def json_errors(exc: Exception, context: dict) -> Response:
    """DRF's exception handler for every API view."""
    if isinstance(exc, exceptions.ValidationError):
        return _validation(exc)
    if isinstance(exc, Http404):
        exc = exceptions.NotFound(str(exc) or "not found")
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied(str(exc) or "permission denied")
    if isinstance(exc, ApiError):
        return Response({"error": exc.get_codes(), "detail": str(exc.detail), **exc.extra}, status=exc.status_code)
    if isinstance(exc, exceptions.APIException):
        code = (exc.get_codes() if isinstance(exc, exceptions.AuthenticationFailed)
                else next((c for kind, c in CODES.items() if isinstance(exc, kind)), "error"))
        if isinstance(code, (list, dict)):
            code = "error"
        headers = {}
        if getattr(exc, "auth_header", None):
            headers["WWW-Authenticate"] = exc.auth_header
        if getattr(exc, "wait", None):
            headers["Retry-After"] = str(int(exc.wait) + 1)
        return Response({"error": code, "detail": str(exc.detail)}, status=exc.status_code, headers=headers)
    request = context.get("request")
    if isinstance(exc, redis.RedisError):
        log.warning("API request without Redis: %s", exc)
        return Response({"error": "unavailable", "detail": f"Redis does not answer ({exc.__class__.__name__}); "
                         "the fleet's live state is there: try again shortly"}, status=503,
                        headers={"Retry-After": "5"})
    log.exception("API request failed: %s %s", getattr(request, "method", "?"), getattr(request, "path", "?"))
    return Response({"error": "internal_error", "detail": "the server failed to answer; the error is in its log"},
                    status=status.HTTP_500_INTERNAL_SERVER_ERROR)


def not_found(request: HttpRequest, path: str = "") -> JsonResponse:
    """Any /api/ address that names no endpoint."""
    return JsonResponse({"error": "not_found", "detail": f"no API endpoint at {request.path}"}, status=404)
