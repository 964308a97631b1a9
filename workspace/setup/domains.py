"""Domains in the workspace: edit the prompt, the codes with their meanings and the few-shot examples, see what the
edit changes before saving it, and save it as the next prompt version (workers_app.catalogue.domains, which the
admin uses too). Each saved edit is in the history below, from the audit log."""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_http_methods

from audit.request_context import client_address
from workers_app.catalogue.domains import EditRefused, domain_changes, domain_history, edited_domain, save_domain
from workers_app.models import Domain
from workers_app.models.catalogue import MAX_CODES, MAX_FEW_SHOT, PROMPT_FIELDS
from workspace.access import requires

CHANGE = "workers_app.change_domain"
EXTRA_CODES = 3
EXTRA_EXAMPLES = 2


class PromptForm(forms.Form):
    prompt_template = forms.CharField(
        label="Prompt", widget=forms.Textarea(attrs={"rows": 14}), strip=False,
        help_text="{text} is where the post goes, {codes} where the codes and their meanings are listed")
    seen_version = forms.IntegerField(widget=forms.HiddenInput, min_value=1)


class CodeForm(forms.Form):
    code = forms.CharField(required=False, max_length=32)
    description = forms.CharField(required=False, max_length=500, label="Meaning")

    def clean(self) -> dict:
        data = super().clean()
        if data.get("description") and not data.get("code"):
            self.add_error("code", "Give the code this meaning belongs to.")
        return data


class ExampleForm(forms.Form):
    message = forms.CharField(required=False, max_length=5000, widget=forms.Textarea(attrs={"rows": 2}))
    answer = forms.CharField(required=False, max_length=500, help_text="with its <<...>> marker, e.g. <<LEVEL_2>>")

    def clean(self) -> dict:
        data = super().clean()
        if bool(data.get("message")) != bool(data.get("answer")):
            self.add_error("answer" if data.get("message") else "message", "An example needs a message and an answer.")
        return data


CodeForms = forms.formset_factory(CodeForm, extra=EXTRA_CODES, max_num=MAX_CODES, absolute_max=MAX_CODES + EXTRA_CODES)
ExampleForms = forms.formset_factory(ExampleForm, extra=EXTRA_EXAMPLES, max_num=MAX_FEW_SHOT,
                                     absolute_max=MAX_FEW_SHOT + EXTRA_EXAMPLES)


class Editor:
    """The three parts of an edit, bound to a post or filled from the domain."""

    def __init__(self, domain: Domain, data=None):
        # A posted edit is all the posted rows: compared with no initial rows, none counts as "unchanged" and none
        # is dropped, whatever the management form says.
        blank = data is not None
        self.prompt = PromptForm(data, initial={"prompt_template": domain.prompt_template,
                                                "seen_version": domain.prompt_version})
        self.codes = CodeForms(data, prefix="codes", initial=None if blank else [
            {"code": c["code"], "description": c.get("description", "")} for c in domain.codes])
        self.examples = ExampleForms(data, prefix="examples", initial=None if blank else [
            {"message": e["message"], "answer": e["answer"]} for e in domain.few_shot])

    def is_valid(self) -> bool:
        return all([self.prompt.is_valid(), self.codes.is_valid(), self.examples.is_valid()])

    def values(self) -> dict:
        return {"prompt_template": self.prompt.cleaned_data["prompt_template"],
                "codes": [{"code": f.cleaned_data["code"], "description": f.cleaned_data.get("description", "")}
                          for f in self.codes if f.cleaned_data.get("code")],
                "few_shot": [{"message": f.cleaned_data["message"], "answer": f.cleaned_data["answer"]}
                             for f in self.examples if f.cleaned_data.get("message")]}


def _domain(slug: str) -> Domain:
    domain = Domain.objects.filter(slug=slug[:32]).first() if "\x00" not in slug else None
    if domain is None:
        raise Http404("no such domain")
    return domain


@require_GET
@requires("workers_app.view_domain")
def index(request: HttpRequest) -> HttpResponse:
    return render(request, "workspace/setup/domains.html", {"section": "setup", "domains": Domain.objects.all()})


def _page(request: HttpRequest, domain: Domain, *, editor: Editor | None = None, status: int = 200,
          **context) -> HttpResponse:
    if editor is None and request.user.has_perm(CHANGE):
        editor = Editor(domain)
    return render(request, "workspace/setup/domain.html", {
        "section": "setup", "domain": domain, "editor": editor, "history": domain_history(domain), **context},
        status=status)


@require_http_methods(["GET", "POST"])
@requires("workers_app.view_domain")
def detail(request: HttpRequest, slug: str) -> HttpResponse:
    """Posted with ``action=review``: what the edit would change; with ``action=save``: saved as the next version."""
    domain = _domain(slug)
    if request.method == "GET":
        return _page(request, domain)
    if not request.user.has_perm(CHANGE):
        raise PermissionDenied(f"needs {CHANGE}")
    editor = Editor(domain, request.POST)
    if not editor.is_valid():
        return _page(request, domain, editor=editor, status=400)
    seen = editor.prompt.cleaned_data["seen_version"]
    try:
        edited = edited_domain(domain, **editor.values())
    except ValidationError as exc:
        return _page(request, domain, editor=editor, status=400, problems=_problems(exc))
    changes = domain_changes(domain, edited)
    if request.POST.get("action") == "save" and changes.any:
        try:
            save_domain(edited, changed=[name for name in PROMPT_FIELDS if getattr(domain, name) != getattr(
                edited, name)], seen_version=seen, actor=request.user, client_address=client_address(request))
        except (EditRefused, ValidationError) as exc:
            return _page(request, domain, editor=editor, status=409, problems=_problems(exc))
        messages.success(request, f"Saved {domain.slug} as prompt version {edited.prompt_version}.")
        return redirect("workspace:setup:domain", domain.slug)
    # Saved by someone else since the editor opened it: the changes shown are against the version now, so a save
    # after this review is a save over the version now.
    data = request.POST.copy()
    data["seen_version"] = domain.prompt_version
    return _page(request, domain, editor=Editor(domain, data), changes=changes,
                 moved_from=seen if seen != domain.prompt_version else None)


def _problems(exc: Exception) -> list[str]:
    if isinstance(exc, ValidationError) and hasattr(exc, "error_dict"):
        return [f"{field.replace('_', ' ')}: {' '.join(errors)}" for field, errors in exc.message_dict.items()]
    return [" ".join(getattr(exc, "messages", [str(exc)]))]
