"""Refuse a request body larger than any page needs before a byte of it is read (Django would otherwise stream a
huge upload to disk, and CSRF checking reads every POST body, even an anonymous one)."""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest, HttpResponse


class RequestSizeLimit:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            return HttpResponse("Content-Length is not a number.\n", status=400, content_type="text/plain")
        if length > settings.MAX_REQUEST_BYTES:
            return HttpResponse(f"The request is larger than the {settings.MAX_REQUEST_BYTES // 2**20} MiB this "
                                "console accepts (IMPORT_MAX_MB sets the upload limit).\n", status=413,
                                content_type="text/plain")
        return self.get_response(request)
