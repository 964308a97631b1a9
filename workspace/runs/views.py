"""The runs pages: every run, one run's record, and two runs compared. Thin views over the run selectors, the fleet's
run services (which audit what they do) and ``compare_runs``."""

from __future__ import annotations

import csv

from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from admin_ops.services.csv_safe import csv_row
from workers_app.models import ReferenceSet, Run, Sample
from workers_app.models.runs import RUN_NAME
from workers_app.runs.compare import CHANGES_KEPT, ComparisonRefused, RunComparison, compare_runs
from workers_app.runs.services import RunRefused, create_run, switch_run
from workspace.access import requires

from .forms import CompareForm, RunForm
from .selectors import other_runs, run_detail, run_rows

PAGE_SIZE = 25


@require_http_methods(["GET", "POST"])
@requires("workers_app.view_run")
def index(request: HttpRequest) -> HttpResponse:
    """The list, and the form that makes a run (posted here, so a refused form comes back with the list)."""
    may_add = request.user.has_perm("workers_app.add_run")
    form, status = (RunForm() if may_add else None), 200
    if request.method == "POST":
        if not may_add:
            raise PermissionDenied("needs workers_app.add_run")
        form = RunForm(request.POST)
        made = _create(request, form)
        if made is not None:
            messages.success(request, f"Made run {made.name} with {made.selection['samples']} samples. It is not "
                                      f"current yet: make it current when the fleet should work on it.")
            return redirect("workspace:runs:detail", made.name)
        status = 400
    page = Paginator(Run.objects.order_by("-created_at", "-id"), PAGE_SIZE).get_page(request.GET.get("page"))
    return render(request, "workspace/runs/index.html", {
        "section": "runs", "form": form, "page": page, "rows": run_rows(list(page.object_list)),
        "no_samples": not Sample.objects.exists()}, status=status)


def _create(request: HttpRequest, form: RunForm) -> Run | None:
    if not form.is_valid():
        return None
    try:
        return create_run(form.plan(), actor=request.user)
    except RunRefused as exc:
        form.add_error(None, str(exc))
        return None


def run_or_404(name: str) -> Run:
    try:
        RUN_NAME(name)  # before the query: PostgreSQL refuses a NUL in a parameter
    except ValidationError:
        raise Http404("no such run") from None
    run = Run.objects.filter(name=name).first()
    if run is None:
        raise Http404("no such run")
    return run


@require_GET
@requires("workers_app.view_run")
def detail(request: HttpRequest, name: str) -> HttpResponse:
    run = run_or_404(name)
    may_compare = request.user.has_perm("workers_app.compare_runs")
    return render(request, "workspace/runs/detail.html", {
        "section": "runs",
        "detail": run_detail(run, with_consolidations=request.user.has_perm("admin_ops.consolidate")),
        "others": other_runs(run) if may_compare else []})


@require_POST
@requires("workers_app.switch_run")
def switch(request: HttpRequest, name: str) -> HttpResponse:
    """Make a run current, once confirmed: by the page's dialog (which sends ``confirmed=yes``), or, without
    JavaScript, by a confirmation page."""
    run = run_or_404(name)
    if request.POST.get("confirmed") != "yes":
        return render(request, "workspace/runs/confirm.html", {
            "section": "runs", "run": run, "current": Run.objects.filter(is_current=True).first()})
    try:
        queued = switch_run(run, actor=request.user)
    except RunRefused as exc:
        return render(request, "workspace/runs/refused.html", {"section": "runs", "reason": str(exc)}, status=400)
    messages.success(request, f"Run {run.name} is current: {sum(queued.values())} sample(s) queued for the "
                              f"running workers.")
    return redirect("workspace:runs:index")


def _compared(request: HttpRequest, *, keep: int | None) -> RunComparison | list[str]:
    """The comparison the URL asks for, or what is wrong with the URL."""
    form = CompareForm(request.GET)
    if not form.is_valid():
        return form.problems()
    if form.cleaned_data["reference"] is not None and not request.user.has_perm("workers_app.view_referenceset"):
        raise PermissionDenied("needs workers_app.view_referenceset")
    try:
        return compare_runs(form.cleaned_data["a"], form.cleaned_data["b"], keep=keep,
                            reference=form.cleaned_data["reference"])
    except ComparisonRefused as exc:
        return [str(exc)]


@require_GET
@requires("workers_app.view_run", "workers_app.compare_runs")
def compare(request: HttpRequest) -> HttpResponse:
    found = _compared(request, keep=CHANGES_KEPT)
    page = {"section": "runs", "runs": _names(),
            "chosen": (request.GET.get("a", ""), request.GET.get("b", ""), request.GET.get("reference", "")),
            "references": _reference_names(request)}
    if isinstance(found, list):
        return render(request, "workspace/runs/compare.html", {**page, "problems": found}, status=400)
    return render(request, "workspace/runs/compare.html", {**page, "comparison": found})


def _reference_names(request: HttpRequest) -> list[str]:
    """The sets a comparison may be measured against, for those who may see them."""
    if not request.user.has_perm("workers_app.view_referenceset"):
        return []
    return list(ReferenceSet.objects.order_by("name").values_list("name", flat=True))


def _names() -> list[str]:
    return list(Run.objects.order_by("-created_at", "-id").values_list("name", flat=True))


@require_GET
@requires("workers_app.view_run", "workers_app.compare_runs")
def compare_csv(request: HttpRequest) -> HttpResponse:
    """Every changed label of the comparison; cells that a spreadsheet would read as a formula stay text."""
    found = _compared(request, keep=None)
    if isinstance(found, list):
        return HttpResponse("\n".join(found), status=400, content_type="text/plain; charset=utf-8")
    a, b = found.a.name, found.b.name
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="changed-labels-{a}-vs-{b}.csv"'
    writer = csv.writer(response)
    writer.writerow(["domain", "annotator", "sample", f"label in {a}", f"label in {b}"])
    for pair in found.pairs:
        for change in pair.changes:
            writer.writerow(csv_row([pair.domain, pair.annotator, change.external_id, change.label_a,
                                     change.label_b]))
    return response
