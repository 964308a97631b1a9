"""The clinical review queue: the list by risk, an item's page, and the reviewer's steps (thin adapters of
workers_app.review.services; every view needs review_sample)."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

from django.contrib import messages
from django.core.paginator import Paginator
from django.db.models import Q
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_POST

from stats.agreement import majority_label
from workers_app.models import Annotator, Domain, Outcome, ReviewItem
from workers_app.review.flags import REASONS, URGENCY, describe, risk_level
from workers_app.review.services import (
    PERMISSION,
    InvalidAdjudication,
    ReviewRefused,
    adjudicable_domains,
    adjudicate_review,
    allowed_codes,
    claim_review,
    release_review,
)
from workers_app.runs.current import current_run
from workspace.access import requires

PAGE_SIZE = 50
LABEL_FIELD = "label-"
STATUSES = {"todo": "to do (open or claimed)", "open": "open", "claimed": "claimed", "reviewed": "reviewed",
            "all": "all"}
REASON_NAMES = {"level_4": "LEVEL_4", "urgency_spread": "urgency spread", "refusal": "refusal"}


def _filtered(request: HttpRequest) -> tuple[object, dict]:
    chosen = {"status": request.GET.get("status", "todo"), "reason": request.GET.get("reason", ""),
              "mine": request.GET.get("mine") == "1"}
    if chosen["status"] not in STATUSES:
        chosen["status"] = "todo"
    if chosen["reason"] not in REASONS:
        chosen["reason"] = ""
    items = ReviewItem.objects.select_related("sample", "claimed_by", "reviewed_by")
    if chosen["status"] == "todo":
        items = items.exclude(status=ReviewItem.Status.REVIEWED)
    elif chosen["status"] != "all":
        items = items.filter(status=chosen["status"])
    if chosen["reason"]:
        # The reason is one of REASONS: its quoted spelling matches only that list element.
        items = items.filter(reasons__icontains=f'"{chosen["reason"]}"')
    if chosen["mine"]:
        items = items.filter(Q(claimed_by=request.user) | Q(reviewed_by=request.user))
    return items.order_by("-risk", "created_at", "id"), chosen


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
    items, chosen = _filtered(request)
    page = Paginator(items, PAGE_SIZE).get_page(request.GET.get("page"))
    given = _urgency_given([item.sample_id for item in page])
    query = request.GET.copy()
    query.pop("page", None)
    return render(request, "workspace/review/index.html", {
        "section": "review", "page": page, "rows": [_row(item, given) for item in page], "chosen": chosen,
        "statuses": STATUSES, "reasons": REASON_NAMES, "query": query.urlencode(),
        "filtered": chosen != {"status": "todo", "reason": "", "mine": False}})


@dataclass
class DomainField:
    """One domain of the adjudication form: its codes, the chosen ones, and the error next to it."""

    domain: Domain
    chosen: list[str]
    error: str = ""
    codes: list[str] = field(default_factory=list)

    @property
    def multiple(self) -> bool:
        return self.domain.kind == Domain.Kind.CODE_SET

    @property
    def name(self) -> str:
        return f"{LABEL_FIELD}{self.domain.slug}"


def _labels_table(item: ReviewItem) -> tuple[list[Domain], list[dict]]:
    """Every annotator's labels of the sample in the current run, one row per annotator, one cell per domain."""
    domains = list(Domain.objects.order_by("position", "slug"))
    stored = {(o.annotator_id, o.domain_id): o for o in Outcome.objects.filter(
        run=current_run(), sample_id=item.sample_id).only(
        "annotator_id", "domain_id", "status", "labels", "reason")}
    rows = []
    for annotator in Annotator.objects.order_by("number"):
        cells = []
        for domain in domains:
            outcome = stored.get((annotator.pk, domain.pk))
            cells.append({"outcome": outcome, "text": outcome.label_text if outcome else ""})
        rows.append({"annotator": annotator, "cells": cells})
    return domains, rows


def _majority(item: ReviewItem, domain: Domain) -> list[str]:
    given = Outcome.objects.filter(run=current_run(), sample_id=item.sample_id, domain=domain,
                                   status=Outcome.Status.OK)
    winner, _ = majority_label([frozenset(labels) for labels in given.values_list("labels", flat=True)])
    return sorted(winner) if winner else []


def _form(item: ReviewItem, submitted: dict[str, list[str]] | None, problems: dict[str, str]) -> list[DomainField]:
    fields = []
    for domain in adjudicable_domains():
        if submitted is not None:
            chosen = submitted.get(domain.slug, [])
        else:
            chosen = item.adjudicated.get(domain.slug) or _majority(item, domain)
        fields.append(DomainField(domain, chosen, problems.get(domain.slug, ""), allowed_codes(domain)))
    return fields


def _item_page(request: HttpRequest, item: ReviewItem, *, submitted: dict | None = None,
               problems: dict[str, str] | None = None, note: str | None = None, status: int = 200) -> HttpResponse:
    problems = problems or {}
    domains, table = _labels_table(item)
    mine = item.status == ReviewItem.Status.CLAIMED and item.claimed_by_id == request.user.pk
    known = {d.slug for d in adjudicable_domains()} | {"note"}
    return render(request, "workspace/review/item.html", {
        "section": "review", "item": item, "why": describe(item.reasons, item.spread),
        "risk": risk_level(item.risk), "domains": domains, "table": table, "mine": mine,
        "may_release": item.status == ReviewItem.Status.CLAIMED and (mine or request.user.is_superuser),
        "fields": _form(item, submitted, problems) if mine else [],
        "note": item.note if note is None else note, "note_error": problems.get("note", ""),
        "other_errors": {k: v for k, v in problems.items() if k not in known},
        "adjudicated": [(slug, ", ".join(codes)) for slug, codes in item.adjudicated.items()],
    }, status=status)


def _item(pk: int) -> ReviewItem:
    return get_object_or_404(ReviewItem.objects.select_related("sample", "claimed_by", "reviewed_by"), pk=pk)


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
    return redirect("workspace:review:item", pk=pk)


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
    # An empty choice ("not adjudicated") leaves the domain out rather than guessing a label for it.
    labels = {key.removeprefix(LABEL_FIELD): chosen for key in request.POST if key.startswith(LABEL_FIELD)
              if (chosen := [value for value in request.POST.getlist(key) if value])}
    note = request.POST.get("note", "")
    try:
        adjudicate_review(item, labels=labels, note=note, actor_user=request.user)
    except InvalidAdjudication as exc:
        return _item_page(request, item, submitted=labels, problems=exc.problems, note=note, status=400)
    except ReviewRefused as exc:
        messages.error(request, str(exc))
        return redirect("workspace:review:item", pk=pk)
    messages.success(request, "Marked reviewed.")
    return redirect("workspace:review:index")
