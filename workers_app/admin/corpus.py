from __future__ import annotations

from pathlib import Path

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import path

from annotation_site.uploads import upload_on_disk
from audit.admin_helpers import ReadOnlyAdmin, client_address
from workers_app.importing.forms import ImportOptions
from workers_app.importing.service import ImportRejected, import_corpus
from workers_app.models import Corpus, Sample


class ImportForm(ImportOptions):
    file = forms.FileField(help_text="xlsx, csv (UTF-8) or jsonl")
    sheets = forms.CharField(required=False, help_text="xlsx only: sheet names separated by commas; empty = all")
    id_column = forms.CharField(required=False, help_text="empty = ID (or Sample_ID)")
    text_column = forms.CharField(required=False, help_text="empty = Text")
    field_order = ["file", "sheets", "id_column", "text_column", "skip_invalid", "allow_cut_cells"]


@admin.register(Corpus)
class CorpusAdmin(ReadOnlyAdmin):
    list_display = ("file_name", "row_count", "sheets", "imported_by", "imported_at")
    change_list_template = "admin/workers_app/corpus/change_list.html"

    # Nothing is deleted here either: samples may have outcomes; removal is a reset.

    def get_urls(self):
        return [path("import/", self.admin_site.admin_view(self.import_view), name="workers_app_corpus_import"),
                *super().get_urls()]

    def import_view(self, request):
        if not request.user.has_perm("workers_app.add_corpus"):
            raise PermissionDenied
        form = ImportForm(request.POST or None, request.FILES or None)
        if request.method == "POST" and form.is_valid() and self._run_import(request, form):
            return redirect("admin:workers_app_corpus_changelist")
        context = {**self.admin_site.each_context(request), "form": form, "title": "Import a corpus",
                   "opts": self.model._meta}
        return TemplateResponse(request, "admin/workers_app/corpus/import.html", context)

    def _run_import(self, request, form: ImportForm) -> bool:
        upload = form.cleaned_data["file"]
        sheets = [s.strip() for s in form.cleaned_data["sheets"].split(",") if s.strip()] or None
        with upload_on_disk(upload) as saved:
            try:
                report = import_corpus(
                    saved, actor=request.user, sheets=sheets, display_name=Path(upload.name).name,
                    id_column=form.cleaned_data["id_column"] or None,
                    text_column=form.cleaned_data["text_column"] or None,
                    skip_invalid=form.cleaned_data["skip_invalid"],
                    allow_cut_cells=form.cleaned_data["allow_cut_cells"], client_address=client_address(request),
                )
            except ImportRejected as exc:
                for problem in exc.problems[:20]:
                    form.add_error(None, str(problem))
                if len(exc.problems) > 20:
                    form.add_error(None, f"… and {len(exc.problems) - 20} more problems. Nothing was imported.")
                return False
        for problem in report.skipped[:20]:
            self.message_user(request, f"skipped: {problem}", messages.WARNING)
        for problem in report.warnings[:20]:
            self.message_user(request, f"imported as it is: {problem}", messages.WARNING)
        self.message_user(request, report.summary(), messages.SUCCESS)
        return True


@admin.register(Sample)
class SampleAdmin(ReadOnlyAdmin):
    list_display = ("external_id", "short_text", "corpus", "source_sheet", "source_row")
    list_filter = ("corpus",)
    search_fields = ("external_id", "text")
    list_select_related = ("corpus",)

    @admin.display(description="text")
    def short_text(self, obj: Sample) -> str:
        return obj.text[:120] + ("…" if len(obj.text) > 120 else "")
