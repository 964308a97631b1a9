"""Importing a corpus in the workspace: upload a file, see its columns and first rows, choose the sheets and columns,
then check every row or import it on the control worker while its page shows the progress. Every problem is listed
by row before anything is written (workers_app.importing does the reading and checking, as for the admin, the API
and the command)."""

from __future__ import annotations

from pathlib import Path

from django import forms
from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from annotation_site.uploads import UploadGone, forget_upload, keep_upload, kept_upload
from api.jobs import start_import
from workers_app.importing.forms import ImportOptions
from workers_app.importing.preview import preview_file
from workers_app.importing.rows import Columns, FileRejected
from workers_app.models import Corpus
from workspace.access import requires

SESSION_KEY = "corpus_uploads"
KEPT_PER_SESSION = 10
NAME_CHARS = 255  # Corpus.file_name
DEFAULT_COLUMN = ""


class UploadForm(forms.Form):
    file = forms.FileField(help_text="xlsx (every sheet, or those you choose next), csv (UTF-8) or jsonl")


class ChoiceForm(ImportOptions):
    """Which sheets and columns to read, and how to treat bad rows; the choices come from the file's header."""

    sheets = forms.MultipleChoiceField(required=False, widget=forms.CheckboxSelectMultiple,
                                       help_text="none ticked: every sheet")
    id_column = forms.ChoiceField(required=False, label="Id column")
    text_column = forms.ChoiceField(required=False, label="Text column")

    def __init__(self, *args, columns: dict[str, list[str]], **kwargs) -> None:
        super().__init__(*args, **kwargs)
        names = list(dict.fromkeys(name for header in columns.values() for name in header if name.strip()))
        self.fields["sheets"].choices = [(sheet, sheet) for sheet in columns if sheet]
        for field, default in (("id_column", "ID, Sample_ID, external_id or post_id"),
                               ("text_column", "Text, post, body or message")):
            self.fields[field].choices = [(DEFAULT_COLUMN, f"the first of {default}"), *((n, n) for n in names)]

    def options(self) -> dict:
        data = self.cleaned_data
        return {"sheets": data["sheets"] or None, "id_column": data["id_column"] or None,
                "text_column": data["text_column"] or None, "skip_invalid": data["skip_invalid"],
                "allow_cut_cells": data["allow_cut_cells"]}


def _uploads(request: HttpRequest) -> dict[str, str]:
    """The uploads of this session: token -> the file's name as given."""
    return request.session.get(SESSION_KEY, {})


def _upload(request: HttpRequest, token: str) -> tuple[Path, str]:
    """A kept upload of this session: its path and name; 404 for any other token."""
    name = _uploads(request).get(token)
    if name is None:
        raise Http404("no such upload in this session")
    try:
        return kept_upload(token), name
    except UploadGone:
        raise Http404("the upload is gone: upload the file again") from None


def _keep(request: HttpRequest, upload) -> str:
    uploads = dict(_uploads(request))
    while len(uploads) >= KEPT_PER_SESSION:
        forget_upload(uploads.pop(next(iter(uploads))))
    token = keep_upload(upload)
    uploads[token] = Path(upload.name or "upload").name[:NAME_CHARS]
    request.session[SESSION_KEY] = uploads
    return token


@require_http_methods(["GET", "POST"])
@requires("workers_app.view_corpus")
def index(request: HttpRequest) -> HttpResponse:
    """The corpora, and the upload that starts an import."""
    may_import = request.user.has_perm("workers_app.add_corpus")
    form = UploadForm() if may_import else None
    if request.method == "POST":
        if not may_import:
            raise PermissionDenied("needs workers_app.add_corpus")
        form = UploadForm(request.POST, request.FILES)
        if form.is_valid():
            return redirect("workspace:setup:corpus_preview", _keep(request, form.cleaned_data["file"]))
    return render(request, "workspace/setup/corpora.html", {
        "section": "setup", "form": form, "corpora": Corpus.objects.order_by("-imported_at")[:50]},
        status=400 if form is not None and form.errors else 200)


@require_http_methods(["GET", "POST"])
@requires("workers_app.add_corpus")
def preview(request: HttpRequest, token: str) -> HttpResponse:
    """The file's columns and first rows as the chosen sheets and columns read them (chosen in the posted form; a
    post here changes nothing)."""
    path, name = _upload(request, token)
    try:
        found = preview_file(path, name)
    except FileRejected as exc:
        forget_upload(token)
        messages.error(request, f"Nothing was imported: {exc.problem}")
        return redirect("workspace:setup:corpora")
    form = ChoiceForm(request.POST or None, columns=found.columns)
    if form.is_bound and form.is_valid():
        options = form.options()
        found = preview_file(path, name, sheets=options["sheets"],
                             columns=Columns.corpus(options["id_column"], options["text_column"]))
    return render(request, "workspace/setup/preview.html", {
        "section": "setup", "token": token, "name": name, "preview": found, "form": form})


@require_POST
@requires("workers_app.add_corpus")
def start(request: HttpRequest, token: str) -> HttpResponse:
    """Check every row (``action=check``) or import (``import``; ``import_valid`` skips the bad rows) on the
    control worker; its job page shows the progress and then every problem by row."""
    path, name = _upload(request, token)
    form = ChoiceForm(request.POST, columns=preview_file(path, name).columns)
    action = request.POST.get("action", "")
    if action not in ("check", "import", "import_valid") or not form.is_valid():
        messages.error(request, "Choose the sheets and columns again: " + (
            "; ".join(f"{field}: {' '.join(errors)}" for field, errors in form.errors.items()) or "no action"))
        return redirect("workspace:setup:corpus_preview", token)
    options = {**form.options(), **({"skip_invalid": True} if action == "import_valid" else {})}
    job = start_import(token, name, options, check_only=action == "check", actor=request.user)
    return redirect("workspace:jobs:job", "import", job)


def repeat_form(request: HttpRequest, note: dict) -> dict | None:
    """For an import job's page: the fields that start the same import again (after a check, or to skip the bad
    rows), while the upload is still kept for this session."""
    token = note.get("upload", "")
    if token not in _uploads(request):
        return None
    try:
        kept_upload(token)
    except UploadGone:
        return None
    options = note.get("options", {})
    fields = [("sheets", sheet) for sheet in options.get("sheets") or []]
    fields += [(option, options[option]) for option in ("id_column", "text_column") if options.get(option)]
    fields += [(option, "on") for option in ("skip_invalid", "allow_cut_cells") if options.get(option)]
    return {"upload": token, "fields": fields}
