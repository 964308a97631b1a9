from __future__ import annotations

from pathlib import Path

from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.shortcuts import render

from workers_app.models import Run
from workspace.access import requires

from .selectors import (
    NotListed,
    archive_file,
    archives,
    consolidated_file,
    consolidations,
    run_consolidated_file,
    run_consolidations,
)


@requires()
def index(request: HttpRequest) -> HttpResponse:
    """Every section is shown only to whom may download its files."""
    may_consolidate = request.user.has_perm("admin_ops.consolidate")
    may_archive = request.user.has_perm("admin_ops.create_archive")
    return render(request, "workspace/files/index.html", {
        "section": "files", "may_consolidate": may_consolidate, "may_archive": may_archive,
        "consolidations": consolidations() if may_consolidate else [],
        "run_consolidations": run_consolidations() if may_consolidate else [],
        "archives": archives() if may_archive else [],
        "runs": list(Run.objects.order_by("-created_at", "-id").values_list("name", flat=True)),
        "current": Run.objects.filter(is_current=True).values_list("name", flat=True).first(),
    })


@requires("admin_ops.consolidate")
def consolidated(request: HttpRequest, name: str) -> FileResponse:
    try:
        return _attachment(consolidated_file(name))
    except (NotListed, FileNotFoundError):
        raise Http404("no such consolidated file") from None


@requires("admin_ops.consolidate")
def run_consolidated(request: HttpRequest, run: str, name: str) -> FileResponse:
    try:
        return _attachment(run_consolidated_file(run, name))
    except (NotListed, FileNotFoundError):
        raise Http404("no such consolidated file") from None


@requires("admin_ops.create_archive")  # as in the admin and the API: an archive holds everything
def archive(request: HttpRequest, name: str) -> FileResponse:
    try:
        _, path = archive_file(name)
        return _attachment(path)
    except (NotListed, FileNotFoundError):
        raise Http404("no such archive") from None


def _attachment(path: Path) -> FileResponse:
    return FileResponse(path.open("rb"), as_attachment=True, filename=path.name)
