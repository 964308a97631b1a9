"""Background jobs in the workspace: start a consolidation or an archive of a run (from the run's page or /files/),
and follow any job (those and corpus imports) on its page while the control worker runs it. Thin views over the
API's job mechanism (api.jobs) and the services it runs."""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from admin_ops.services.archive import archive_name_problem
from api import jobs
from workers_app.models import Run
from workspace.access import requires
from workspace.runs.views import run_or_404
from workspace.setup.corpora import repeat_form

# Who may follow a job: whoever may start one of its kind.
PERMISSION = {"consolidation": "admin_ops.consolidate", "archive": "admin_ops.create_archive",
              "import": "workers_app.add_corpus"}
# What a job's page shows of the job's note (never the upload's token).
SHOWN_NOTE = ("run", "name", "file", "check_only")


def _status(request: HttpRequest, kind: str, job: str) -> dict:
    if kind not in PERMISSION:
        raise Http404("no such kind of job")
    if not request.user.has_perm(PERMISSION[kind]):
        raise PermissionDenied(f"needs {PERMISSION[kind]}")
    found = jobs.job_status(kind, str(job))
    if found is None:
        raise Http404("no such job")
    return found


def _shown(note: dict) -> dict:
    return {key: value for key, value in note.items() if key in SHOWN_NOTE}


def _back(request: HttpRequest) -> HttpResponse:
    """Back where the form was (the run's page or /files/); only a path of this site."""
    back = request.POST.get("back", "")
    return redirect(back if back.startswith("/") and not back.startswith("//") else reverse("workspace:files:index"))


@require_POST
@requires("admin_ops.consolidate")
def consolidate(request: HttpRequest) -> HttpResponse:
    run = run_or_404(request.POST.get("run", ""))
    job = jobs.start_consolidation(run, actor=request.user)
    return redirect("workspace:jobs:job", "consolidation", job)


@require_POST
@requires("admin_ops.create_archive")
def archive(request: HttpRequest) -> HttpResponse:
    """An archive of every run, or of the run named (an empty run: every run)."""
    name = request.POST.get("name", "").strip()
    run: Run | None = run_or_404(request.POST["run"]) if request.POST.get("run") else None
    problem = archive_name_problem(name)
    if problem:
        messages.error(request, f"No archive started: {problem}.")
        return _back(request)
    job = jobs.start_archive(name, run, actor=request.user)
    return redirect("workspace:jobs:job", "archive", job)


@require_GET
@requires()
def job(request: HttpRequest, kind: str, job: str) -> HttpResponse:
    found = _status(request, kind, job)
    again = repeat_form(request, found["note"]) if kind == "import" and found["status"] == "done" else None
    return render(request, "workspace/jobs/job.html", {
        "section": "setup" if kind == "import" else "files", "job": {**found, "note": _shown(found["note"])},
        "again": again})


@require_GET
@requires(polled=True)
def live(request: HttpRequest, kind: str, job: str) -> JsonResponse:
    """The job's status and progress for its page's script, which reloads the page once the job has ended."""
    found = _status(request, kind, job)
    return JsonResponse({key: found[key] for key in ("status", "progress", "error")})
