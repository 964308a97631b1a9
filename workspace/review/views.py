"""The clinical review queue: the list by risk, an item's page, and the reviewer's steps (thin adapters of
workers_app.review.services; every view needs review_sample). The queue's filters ride along in the query string
from the list to each item and from item to item, so "save and next" walks the queue the reviewer chose."""

from __future__ import annotations

from collections import defaultdict

from django.contrib import messages
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from workers_app.models import Annotator, Domain, Outcome, ReviewItem
from workers_app.review.flags import URGENCY, describe, risk_level
from workers_app.review.services import (
    PERMISSION,
    InvalidAdjudication,
    ReviewRefused,
    adjudicable_domains,
    adjudicate_review,
    claim_review,
    release_review,
)
from workers_app.runs.current import current_run
from workspace.access import requires

from .form import form_fields, submitted_labels
from .queue import STATUSES, Filters, counters, neighbours

PAGE_SIZE = 50
REASON_NAMES = {"level_4": "LEVEL_4", "urgency_spread": "urgency spread", "annotators_disagree": "annotators disagree",
                "low_confidence": "low confidence", "refusal": "refusal"}
THEN_NEXT = "next"  # the adjudication form's "save and next"


def _urgency_given(sample_ids: list[int]) -> dict[int, list[tuple[int, str]]]:
    """(annotator number, label or 'malformed') of each sample's stored urgency outcomes in the current run: one
    query."""
    given: dict[int, list[tuple[int, str]]] = defaultdict(list)
    rows = Outcome.objects.filter(run=current_run(), sample_id__in=sample_ids, domain__slug=URGENCY).order_by(
        "annotator__number")
    for sample_id, number, status, labels in rows.values_list("sample_id", "annotator__number", "status", "labels"):
        given[sample_id].append((number, ", ".join(labels) if status == Outcome.Status.OK else "malformed"))
    return given


def _row(item: ReviewItem, given: dict) -> dict:
    return {"item": item, "why": describe(item.reasons, item.spread), "risk": risk_level(item.risk),
            "urgency": given.get(item.sample_id, [])}


@requires(PERMISSION)
@require_GET
def index(request: HttpRequest) -> HttpResponse:
    filters = Filters.from_query(request.GET)
    page = Paginator(filters.items(request.user), PAGE_SIZE).get_page(request.GET.get("page"))
    given = _urgency_given([item.sample_id for item in page])
    return render(request, "workspace/review/index.html", {
        "section": "review", "page": page, "rows": [_row(item, given) for item in page], "chosen": filters.chosen,
        "statuses": STATUSES, "reasons": REASON_NAMES, "query": filters.query, "kept": filters.suffix,
        "filtered": filters.filtered, "counters": counters(request.user)})


def _labels_table(item: ReviewItem) -> tuple[list[Domain], list[dict]]:
    """Every annotator's labels of the sample in the current run, one row per annotator, one cell per domain."""
    domains = list(Domain.objects.order_by("position", "slug"))
    stored = {(o.annotator_id, o.domain_id): o for o in Outcome.objects.filter(
        run=current_run(), sample_id=item.sample_id).only(
        "annotator_id", "domain_id", "status", "labels", "reason", "confidence")}
    rows = []
    for annotator in Annotator.objects.order_by("number"):
        cells = []
        for domain in domains:
            outcome = stored.get((annotator.pk, domain.pk))
            cells.append({"outcome": outcome, "text": outcome.label_text if outcome else "",
                          "unsure": _unsure(outcome, domain)})
        rows.append({"annotator": annotator, "cells": cells})
    return domains, rows


def _unsure(outcome: Outcome | None, domain: Domain) -> bool:
    """Whether this label is one that routes its post to review for low confidence."""
    threshold = domain.review_below_confidence
    return (outcome is not None and outcome.confidence is not None and threshold is not None
            and outcome.confidence < threshold)


def _item_page(request: HttpRequest, item: ReviewItem, *, submitted: dict | None = None,
               problems: dict[str, str] | None = None, note: str | None = None, status: int = 200) -> HttpResponse:
    problems = problems or {}
    filters = Filters.from_query(request.GET)
    domains, table = _labels_table(item)
    mine = item.status == ReviewItem.Status.CLAIMED and item.claimed_by_id == request.user.pk
    known = {d.slug for d in adjudicable_domains()} | {"note"}
    return render(request, "workspace/review/item.html", {
        "section": "review", "item": item, "why": describe(item.reasons, item.spread),
        "risk": risk_level(item.risk), "domains": domains, "table": table, "mine": mine,
        "may_release": item.status == ReviewItem.Status.CLAIMED and (mine or request.user.is_superuser),
        "fields": form_fields(item, submitted, problems) if mine else [],
        "note": item.note if note is None else note, "note_error": problems.get("note", ""),
        "other_errors": {k: v for k, v in problems.items() if k not in known},
        "adjudicated": [(slug, "; ".join(codes)) for slug, codes in item.adjudicated.items()],
        "kept": filters.suffix, "filtered": filters.filtered, "chosen": filters.chosen, "reasons": REASON_NAMES,
        "around": neighbours(item, filters, request.user), "counters": counters(request.user),
    }, status=status)


def _item(pk: int) -> ReviewItem:
    return get_object_or_404(ReviewItem.objects.select_related("sample", "claimed_by", "reviewed_by"), pk=pk)


def _to_item(pk: int, filters: Filters) -> HttpResponse:
    return redirect(reverse("workspace:review:item", args=[pk]) + filters.suffix)


@requires(PERMISSION)
@require_GET
def item(request: HttpRequest, pk: int) -> HttpResponse:
    return _item_page(request, _item(pk))


def _step(request: HttpRequest, pk: int, step, done: str) -> HttpResponse:
    try:
        step(_item(pk), actor_user=request.user)
        messages.success(request, done)
    except ReviewRefused as exc:
        messages.error(request, str(exc))
    return _to_item(pk, Filters.from_query(request.GET))


@requires(PERMISSION)
@require_POST
def claim(request: HttpRequest, pk: int) -> HttpResponse:
    return _step(request, pk, claim_review, "You claimed this item: record the labels below.")


@requires(PERMISSION)
@require_POST
def release(request: HttpRequest, pk: int) -> HttpResponse:
    return _step(request, pk, release_review, "Released: the item is back in the queue.")


@requires(PERMISSION)
@require_POST
def adjudicate(request: HttpRequest, pk: int) -> HttpResponse:
    item = _item(pk)
    filters = Filters.from_query(request.GET)
    labels = submitted_labels(request.POST)
    note = request.POST.get("note", "")
    try:
        adjudicate_review(item, labels=labels, note=note, actor_user=request.user)
    except InvalidAdjudication as exc:
        return _item_page(request, item, submitted=labels, problems=exc.problems, note=note, status=400)
    except ReviewRefused as exc:
        messages.error(request, str(exc))
        return _to_item(pk, filters)
    if request.POST.get("then") == THEN_NEXT:
        following = neighbours(item, filters, request.user).next
        if following is not None:
            messages.success(request, f"Marked sample {item.sample.external_id} reviewed; here is the next item.")
            return _to_item(following, filters)
        messages.success(request, "Marked reviewed. That was the last item of this queue.")
    else:
        messages.success(request, "Marked reviewed.")
    return redirect(reverse("workspace:review:index") + filters.suffix)
