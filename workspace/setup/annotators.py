"""Annotators in the workspace: their settings (the write-only key, limits, a new price, budget, cache) through the
audited service the admin uses too, and "try it": one domain's prompt for up to three chosen posts, sent to the
annotator, with the raw answers, how they parse, tokens and latency shown and nothing stored."""

from __future__ import annotations

import re

from django import forms
from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from audit.request_context import client_address
from workers_app.catalogue.annotators import save_annotator
from workers_app.catalogue.forms import AnnotatorKeyForm, PriceForm
from workers_app.catalogue.trial import MAX_POSTS, TrialAnswer, try_annotator
from workers_app.models import Annotator, Domain, Sample
from workspace.access import requires

CHANGE = "workers_app.change_annotator"
SETTINGS = ["backend", "request_mode", "model", "base_url", "api_key_env", "requests_per_minute", "temperature",
            "max_tokens", "timeout_seconds", "max_retries", "max_input_chars", "budget", "cache_responses",
            "request_logprobs", "answers_per_item", "mode", "batch_protocol", "batch_size", "enabled"]
POST_IDS = re.compile(r"[\s,]+")


class SettingsForm(AnnotatorKeyForm):
    class Meta(AnnotatorKeyForm.Meta):
        fields = SETTINGS
        labels = {"base_url": "Base URL", "api_key_env": "Or: the key's environment variable",
                  "requests_per_minute": "Requests per minute", "max_input_chars": "Cut posts longer than",
                  "cache_responses": "Answer repeated requests from the response cache",
                  "request_logprobs": "Ask for logprobs and store each label's probability",
                  "answers_per_item": "Answers per item (self-consistency)",
                  "mode": "Mode (live or the provider's batch API)"}

    field_order = [*SETTINGS[:4], "api_key", "clear_api_key", *SETTINGS[4:]]


class TrialForm(forms.Form):
    domain = forms.ChoiceField()
    posts = forms.CharField(max_length=600, label="Posts", help_text=f"the ids of 1 to {MAX_POSTS} posts, separated by "
                            "spaces or commas (as the Samples page shows them)")

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["domain"].choices = list(Domain.objects.values_list("slug", "title"))
        if not self.is_bound:
            self.initial["posts"] = " ".join(Sample.objects.order_by("pk").values_list("external_id",
                                                                                        flat=True)[:MAX_POSTS])

    def clean_posts(self) -> list[Sample]:
        ids = list(dict.fromkeys(part for part in POST_IDS.split(self.cleaned_data["posts"]) if part))
        if not 1 <= len(ids) <= MAX_POSTS:
            raise ValidationError(f"Give 1 to {MAX_POSTS} post ids (got {len(ids)}).")
        found = {sample.external_id: sample for sample in Sample.objects.filter(external_id__in=ids)}
        missing = [external_id for external_id in ids if external_id not in found]
        if missing:
            raise ValidationError(f"No post with the id {', '.join(repr(m[:60]) for m in missing)}.")
        return [found[external_id] for external_id in ids]

    def clean_domain(self) -> Domain:
        return Domain.objects.get(slug=self.cleaned_data["domain"])


def _annotator(number: int) -> Annotator:
    annotator = Annotator.objects.filter(number=number).first()
    if annotator is None:
        raise Http404("no such annotator")
    return annotator


@require_GET
@requires("workers_app.view_annotator")
def index(request: HttpRequest) -> HttpResponse:
    return render(request, "workspace/setup/annotators.html", {
        "section": "setup", "annotators": Annotator.objects.order_by("number").prefetch_related("prices")})


def _page(request: HttpRequest, annotator: Annotator, *, form: SettingsForm | None = None,
          price: PriceForm | None = None, trial: TrialForm | None = None, answers: list[TrialAnswer] | None = None,
          status: int = 200) -> HttpResponse:
    may_change = request.user.has_perm(CHANGE)
    return render(request, "workspace/setup/annotator.html", {
        "section": "setup", "annotator": annotator, "prices": annotator.prices.order_by("-valid_from"),
        "form": form or (SettingsForm(instance=annotator) if may_change else None),
        "price": price or (PriceForm(prefix="price", annotator=annotator) if may_change else None),
        "trial": trial or (TrialForm() if may_change else None), "answers": answers}, status=status)


@require_http_methods(["GET", "POST"])
@requires("workers_app.view_annotator")
def detail(request: HttpRequest, number: int) -> HttpResponse:
    """The settings; posted, they are saved through the audited service (the key rules and the model's checks)."""
    annotator = _annotator(number)
    if request.method == "GET":
        return _page(request, annotator)
    if not request.user.has_perm(CHANGE):
        raise PermissionDenied(f"needs {CHANGE}")
    form = SettingsForm(request.POST, instance=annotator)
    price = PriceForm(request.POST, prefix="price", annotator=annotator)
    if form.is_valid() and price.is_valid():
        try:
            save_annotator(form.instance, changed=form.changed_settings(), key=form.key_change(),
                           price=price.new_price(), actor=request.user, client_address=client_address(request))
        except ValidationError as exc:  # what the forms could not know: a change made meanwhile
            form.add_error(None, "; ".join(exc.messages))
        else:
            messages.success(request, f"Saved the settings of {annotator}.")
            return redirect("workspace:setup:annotator", annotator.number)
    return _page(request, _annotator(number), form=form, price=price, status=400)


@require_POST
@requires(CHANGE)
def trial(request: HttpRequest, number: int) -> HttpResponse:
    """Try the annotator as saved: the answers are shown on its page, nothing is stored."""
    annotator = _annotator(number)
    form = TrialForm(request.POST)
    if not form.is_valid():
        return _page(request, annotator, trial=form, status=400)
    answers = try_annotator(annotator, form.cleaned_data["domain"], form.cleaned_data["posts"], actor=request.user,
                            client_address=client_address(request))
    return _page(request, annotator, trial=form, answers=answers)
