"""The quality pages: a run against a reference set (the annotators side by side with their intervals, confusion
matrices as heat tables, the items each got most wrong), and the reference sets with their provenance, an import
form and delete. Thin views over workers_app.references (selectors, the audited import and delete, run_quality)."""

from __future__ import annotations

from pathlib import Path

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from annotation_site.uploads import upload_on_disk
from audit.request_context import client_address
from workers_app.models import ADJUDICATED_SET, Run
from workers_app.references.importer import PROVENANCE_FIELDS, Provenance, delete_reference, import_reference
from workers_app.references.options import ReferenceRefused, layout_from_texts
from workers_app.references.quality import run_quality
from workers_app.references.selectors import UnknownReference, reference_by_name, reference_summaries
from workspace.access import requires

from .forms import QualityForm, ReferenceImportForm, run_names
from .selectors import row_views


def _default_reference(summaries: list) -> str:
    labelled = [s.name for s in summaries if s.labels]
    if ADJUDICATED_SET in labelled:
        return ADJUDICATED_SET
    return labelled[0] if labelled else (summaries[0].name if summaries else "")


@require_GET
@requires("workers_app.view_quality", "workers_app.view_referenceset")
def index(request: HttpRequest) -> HttpResponse:
    summaries = reference_summaries()
    runs = run_names()
    form = QualityForm(request.GET or None, runs=runs, references=[s.name for s in summaries])
    page = {"section": "quality", "form": form, "runs": runs, "summaries": summaries}
    if form.is_bound and not form.is_valid():
        return render(request, "workspace/quality/index.html", {**page, "problems": form.problems()}, status=400)
    values = form.cleaned_data if form.is_bound else {}
    run_name = values.get("run") or (runs[0] if runs else "")
    reference = values.get("reference") or _default_reference(summaries)
    page["chosen"] = (run_name, reference)
    if not run_name or not reference:
        return render(request, "workspace/quality/index.html", page)
    found = run_quality(Run.objects.get(name=run_name), reference_by_name(reference))
    domains = [(domain, row_views(domain)) for domain in found.domains]
    return render(request, "workspace/quality/index.html", {**page, "quality": found, "domains": domains})


@require_http_methods(["GET", "POST"])
@requires("workers_app.view_referenceset")
def references(request: HttpRequest) -> HttpResponse:
    """The sets with their provenance, and the import form (posted here: a refused import comes back with it)."""
    may_add = request.user.has_perm("workers_app.add_referenceset")
    form, status, problems = (ReferenceImportForm() if may_add else None), 200, []
    if request.method == "POST":
        if not may_add:
            raise PermissionDenied("needs workers_app.add_referenceset")
        form = ReferenceImportForm(request.POST, request.FILES)
        if form.is_valid():
            try:
                report = _import(request, form)
            except ReferenceRefused as exc:
                problems = exc.problems
            else:
                messages.success(request, report.summary())
                return redirect("workspace:quality:references")
        status = 400
    return render(request, "workspace/quality/references.html", {
        "section": "quality", "form": form, "summaries": reference_summaries(), "problems": problems,
        "may_delete": request.user.has_perm("workers_app.delete_referenceset")}, status=status)


def _import(request: HttpRequest, form: ReferenceImportForm):
    values = form.cleaned_data
    upload = values["file"]
    layout, value_map = layout_from_texts(
        id_column=values["id_column"], label_columns=[values["label_columns"]], domain_column=values["domain_column"],
        value_column=values["value_column"], rater_column=values["rater_column"], sheets=[values["sheets"]],
        maps=[values["map"]])
    with upload_on_disk(upload) as saved:
        return import_reference(saved, name=values["name"], layout=layout, value_map=value_map, actor=request.user,
                                provenance=Provenance(**{f: values[f] for f in PROVENANCE_FIELDS}),
                                display_name=Path(upload.name or "upload").name[:255],
                                client_address=client_address(request))


@require_POST
@requires("workers_app.delete_referenceset")
def delete(request: HttpRequest, name: str) -> HttpResponse:
    """Delete a set once confirmed (``confirmed=yes``, sent by the confirmation page)."""
    try:
        found = reference_by_name(name)
    except UnknownReference as exc:
        return render(request, "workspace/quality/refused.html", {"section": "quality", "reason": str(exc)},
                      status=404)
    if request.POST.get("confirmed") != "yes":
        return render(request, "workspace/quality/confirm.html", {
            "section": "quality", "reference": found, "labels": found.labels.count()})
    try:
        labels = delete_reference(found, actor=request.user, client_address=client_address(request))
    except ReferenceRefused as exc:
        return render(request, "workspace/quality/refused.html", {"section": "quality",
                                                                  "reason": "; ".join(exc.problems)}, status=400)
    messages.success(request, f"Deleted reference set {name} and its {labels} label(s).")
    return redirect("workspace:quality:references")
