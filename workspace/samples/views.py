from __future__ import annotations

from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse

from workers_app.fleet.selectors import UnknownRun, chosen_run
from workers_app.models import Sample
from workspace.access import requires

from .forms import SampleFilterForm
from .selectors import corpora, filtered_samples, for_listing, load_catalogue, page_rows, run_in, runs, sample_view

PAGE_SIZE = 50


@requires("workers_app.view_sample")
def index(request: HttpRequest) -> HttpResponse:
    catalogue = load_catalogue()
    known = runs()
    form = SampleFilterForm(request.GET or None, runs=known, corpora=corpora(), domains=catalogue.domains,
                            annotators=catalogue.annotators)
    values = form.valid_values() if form.is_bound else {}
    run = run_in(known, values.get("run"))
    paginator = Paginator(for_listing(filtered_samples(values, catalogue, run)), PAGE_SIZE)
    number, page_note = page_number(request.GET.get("page"), paginator.num_pages)
    page = paginator.page(number)
    kept = request.GET.copy()
    kept.pop("page", None)
    return render(request, "workspace/samples/index.html", {
        "section": "samples", "form": form, "problems": [*form.problems(), *filter(None, [page_note])],
        "page": page, "rows": page_rows(list(page.object_list), catalogue, run), "run": run,
        "cells": catalogue.of_run(run).cells,
        "filters": kept.urlencode(), "filtered": bool(kept),
        "no_samples": paginator.count == 0 and not Sample.objects.exists(),
    })


def page_number(raw: str | None, pages: int) -> tuple[int, str | None]:
    """The page to show for the ``page`` parameter, and a note when it had to be corrected."""
    try:
        wanted = int(raw or 1)
    except ValueError:
        return 1, f"“{raw[:40]}” is not a page number: showing page 1."
    sane = min(max(wanted, 1), pages)
    return sane, None if sane == wanted else f"There is no page {wanted}: showing page {sane} of {pages}."


def _to_sample(request: HttpRequest, pk: int) -> HttpResponse:
    query = request.GET.urlencode()
    return redirect(reverse("workspace:samples:detail", args=[pk]) + (f"?{query}" if query else ""))


@requires("workers_app.view_sample")
def by_external_id(request: HttpRequest, external_id: str) -> HttpResponse:
    """Alerts, workbooks and exports name samples by their external id (DEMO-017): its page is here too."""
    pk = Sample.objects.filter(external_id=external_id).values_list("pk", flat=True).first()
    if pk is None:
        raise Http404(f"no sample with the id or external id {external_id[:80]!r}")
    return _to_sample(request, pk)


@requires("workers_app.view_sample")
def detail(request: HttpRequest, pk: int) -> HttpResponse:
    try:
        shown = sample_view(pk, chosen_run(request.GET.get("run")))
    except Sample.DoesNotExist:
        # An external id made of digits only reaches here; it names its sample when no row has that number.
        named = Sample.objects.filter(external_id=str(pk)).values_list("pk", flat=True).first()
        if named is not None:
            return _to_sample(request, named)
        raise Http404("no sample with this id") from None
    except UnknownRun as exc:
        raise Http404(f"run: {exc}") from None
    return render(request, "workspace/samples/detail.html", {
        "section": "samples", "view": shown, "other_runs": [r for r in runs() if r.pk != shown.run.pk]})
