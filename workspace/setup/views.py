"""/setup/: where each part of setting up a study is, for whoever may do it."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from workspace.access import requires


@require_GET
@requires()
def index(request: HttpRequest) -> HttpResponse:
    return render(request, "workspace/setup/index.html", {"section": "setup"})
