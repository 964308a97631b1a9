"""The Operations page and archive actions: thin adapters over admin_ops.services, one permission each."""

from __future__ import annotations

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import FileResponse, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse

from audit.admin_helpers import client_address

from .models import Archive
from .services.archive import ArchiveError, create_archive, verify_and_record
from .services.consolidate import consolidate
from .services.reset import ResetRefused, preview_reset, reset_data
from .services.restore import RestoreConflict, restore_archive
from .services.state import StateError, export_state, import_state, read_document

PERM = "admin_ops.{}"


def require(request: HttpRequest, permission: str) -> None:
    if not request.user.has_perm(PERM.format(permission)):
        raise PermissionDenied(f"you need the '{permission}' permission")


class ResetForm(forms.Form):
    annotator = forms.IntegerField(required=False, min_value=1)
    domain = forms.CharField(required=False)
    factory = forms.BooleanField(required=False, help_text="everything; superusers only")
    keep_excel = forms.BooleanField(required=False)
    no_backup = forms.BooleanField(required=False, help_text="do not archive first")
    confirm_name = forms.CharField(required=False, help_text="factory reset: type the project name")


class ArchiveForm(forms.Form):
    name = forms.CharField(max_length=100)


class ImportStateForm(forms.Form):
    file = forms.FileField()


def _page(admin_site, request, template: str, status: int = 200, **context) -> TemplateResponse:
    return TemplateResponse(request, template, {**admin_site.each_context(request),
                                                "opts": Archive._meta, **context}, status=status)


def operations_view(model_admin: admin.ModelAdmin, request: HttpRequest) -> HttpResponse:
    forms_ = {"reset_form": ResetForm(prefix="reset"), "archive_form": ArchiveForm(prefix="archive"),
              "import_form": ImportStateForm(prefix="import")}
    return _page(model_admin.admin_site, request, "admin/admin_ops/archive/operations.html",
                 title="Operations on data", project_name=settings.PROJECT_NAME, **forms_)


def reset_view(model_admin: admin.ModelAdmin, request: HttpRequest) -> HttpResponse:
    form = ResetForm(request.POST, prefix="reset")
    valid = form.is_valid()
    # The permission first, so that a user without it learns nothing from the form's errors.
    require(request, "factory_reset" if form.cleaned_data.get("factory") else "reset_data")
    if not valid:
        messages.error(request, f"reset: {form.errors.as_text()}")
        return redirect("admin:admin_ops_operations")
    data = form.cleaned_data
    scope = {"annotator": data["annotator"], "domain": data["domain"] or None, "factory": data["factory"]}
    try:
        preview = preview_reset(**scope)
    except (ResetRefused, ValueError) as exc:
        messages.error(request, f"reset refused: {exc}")
        return redirect("admin:admin_ops_operations")
    if request.POST.get("confirmed") != "yes":
        return _page(model_admin.admin_site, request, "admin/admin_ops/archive/confirm_reset.html",
                     title="Confirm the reset", preview=preview, post=request.POST, factory=data["factory"],
                     project_name=settings.PROJECT_NAME)
    if data["factory"] and data["confirm_name"] != settings.PROJECT_NAME:
        messages.error(request, f"factory reset not done: type the project name '{settings.PROJECT_NAME}' exactly")
        return redirect("admin:admin_ops_operations")
    report = reset_data(actor=request.user, backup=not data["no_backup"], keep_excel=data["keep_excel"], **scope)
    archived = f"; archived first as {report.archive}" if report.archive else "; no archive was made"
    messages.success(request, f"Reset {report.summary()}{archived}. The workers are stopped.")
    return redirect("admin:admin_ops_operations")


def create_archive_view(model_admin: admin.ModelAdmin, request: HttpRequest) -> HttpResponse:
    require(request, "create_archive")
    form = ArchiveForm(request.POST, prefix="archive")
    try:
        if not form.is_valid():
            raise ArchiveError(form.errors.as_text())
        archive = create_archive(form.cleaned_data["name"], actor=request.user)
        messages.success(request, f"Archive {archive.name} written ({archive.size:,} bytes).")
    except ArchiveError as exc:
        messages.error(request, f"archive not written: {exc}")
    return redirect("admin:admin_ops_archive_changelist")


def export_state_view(model_admin: admin.ModelAdmin, request: HttpRequest) -> HttpResponse:
    require(request, "export_state")
    body = export_state(actor=request.user, target="download", client_address=client_address(request))
    response = HttpResponse(body, content_type="application/json")
    response["Content-Disposition"] = 'attachment; filename="annotation-fleet-state.json"'
    return response


def _state_text(request: HttpRequest) -> str:
    """The document to import: the upload (checked and shown first), or the one kept while staff confirm it."""
    if request.POST.get("confirmed") == "yes":
        text = request.session.pop("pending_state", None)
        if text is None:
            raise StateError("nothing to import: upload the file again")
        return text
    form = ImportStateForm(request.POST, request.FILES, prefix="import")
    if not form.is_valid():
        raise StateError(f"import: {form.errors.as_text()}")
    return read_document(form.cleaned_data["file"], source="the uploaded file")


def import_state_view(model_admin: admin.ModelAdmin, request: HttpRequest) -> HttpResponse:
    require(request, "import_state")
    dry = request.POST.get("confirmed") != "yes"
    try:
        text = _state_text(request)
        plan = import_state(text, source="the uploaded file", actor=request.user, dry_run=dry)
    except StateError as exc:
        messages.error(request, str(exc))
        return redirect("admin:admin_ops_operations")
    if dry:
        request.session["pending_state"] = text
        return _page(model_admin.admin_site, request, "admin/admin_ops/archive/confirm_import.html",
                     title="Import this state?", changes=plan.changes)
    messages.success(request, f"State imported: {len(plan.changes)} change(s).")
    return redirect("admin:admin_ops_operations")


def consolidate_view(model_admin: admin.ModelAdmin, request: HttpRequest) -> HttpResponse:
    require(request, "consolidate")
    report = consolidate(actor=request.user)
    return FileResponse(report.path.open("rb"), as_attachment=True, filename=report.path.name)


def download_archive_view(model_admin: admin.ModelAdmin, request: HttpRequest, pk: int) -> HttpResponse:
    require(request, "create_archive")
    archive = get_object_or_404(Archive, pk=pk)
    try:
        handle = (settings.ARCHIVES_DIR / archive.file_name).open("rb")
    except FileNotFoundError:
        return _page(model_admin.admin_site, request, "admin/admin_ops/archive/missing_file.html",
                     title=f"The file of {archive.name} is missing", archive=archive, status=404)
    return FileResponse(handle, as_attachment=True, filename=archive.file_name)


def verify_archives(model_admin, request, queryset) -> None:
    for archive in queryset:
        result = verify_and_record(archive, actor=request.user)
        if result.ok:
            model_admin.message_user(request, f"{archive.name}: every checksum matches", messages.SUCCESS)
        else:
            model_admin.message_user(request, f"{archive.name}: " + "; ".join(result.problems), messages.ERROR)


def restore_archives(model_admin, request, queryset):
    if queryset.count() != 1:
        model_admin.message_user(request, "restore one archive at a time", messages.ERROR)
        return None
    archive = queryset.get()
    path = settings.ARCHIVES_DIR / archive.file_name
    try:
        if request.POST.get("confirmed") != "yes":
            plan = restore_archive(path, actor=request.user, dry_run=True)
            return _page(model_admin.admin_site, request, "admin/admin_ops/archive/confirm_restore.html",
                         title=f"Restore {archive.name}?", plan=plan, archive=archive,
                         action_checkbox_name=admin.helpers.ACTION_CHECKBOX_NAME)
        plan = restore_archive(path, actor=request.user)
        model_admin.message_user(request, f"Restored {plan.summary()}", messages.SUCCESS)
    except (ArchiveError, RestoreConflict) as exc:
        model_admin.message_user(request, str(exc), messages.ERROR)
    return None
