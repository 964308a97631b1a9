from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from workspace.access import requires


@requires("workers_app.view_sample")
def index(request: HttpRequest) -> HttpResponse:
    return render(request, "workspace/base.html", {"section": "review"})
