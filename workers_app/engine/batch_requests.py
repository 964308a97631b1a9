"""Batch mode's first step: a sample taken from the queue is recorded as a pending batch request before its message
is acknowledged (see ``engine.batch`` for the rest)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.db.models import Count, Exists, Min, OuterRef, Q, QuerySet

from workers_app.models import Annotator, Batch, BatchRequest, Domain, Outcome, Run

from .keys import WorkerKey


def custom_id(run_id: int, sample_id: int, domain: str) -> str:
    """Names (run, sample, domain) within an annotator's batch; fits both protocols' ``^[A-Za-z0-9_-]{1,64}$``."""
    return f"r{run_id}-s{sample_id}-{domain}"


def is_batch_mode(annotator: Annotator) -> bool:
    return annotator.mode == Annotator.Mode.BATCH and not annotator.answers_in_process


def take_into_batch(sample_ids: list[int], run: Run, annotator: Annotator, domain: Domain) -> None:
    """Record the samples as pending batch requests, in one INSERT; a redelivered message finds its requests
    recorded (one per run, sample, annotator and domain) and adds nothing."""
    BatchRequest.objects.bulk_create([BatchRequest(run=run, sample_id=sample_id, annotator=annotator, domain=domain,
                                                   custom_id=custom_id(run.pk, sample_id, domain.slug))
                                      for sample_id in sample_ids], ignore_conflicts=True)


def pending_requests(annotator: Annotator, domain: Domain) -> QuerySet:
    return BatchRequest.objects.filter(annotator=annotator, domain=domain, batch=None)


@dataclass
class BatchesInFlight:
    """One worker's (annotator, domain) batch mode at a glance: provider batches not ended yet, the requests they
    hold, the oldest one's creation, and the requests still waiting for a batch."""

    batches: int = 0
    requests: int = 0
    oldest: datetime | None = None
    pending: int = 0


def batches_in_flight() -> dict[tuple[int, str], BatchesInFlight]:
    """Per (annotator number, domain slug) with any: one grouped query over the requests that wait or are in a batch
    not ended, whatever the number of batches."""
    open_batch = Q(batch__state__in=[Batch.State.SUBMITTING, Batch.State.IN_FLIGHT])
    rows = (BatchRequest.objects.filter(Q(batch=None) | open_batch).values("annotator__number", "domain__slug")
            .annotate(batches=Count("batch", distinct=True, filter=open_batch),
                      requests=Count("id", filter=open_batch), oldest=Min("batch__created_at", filter=open_batch),
                      pending=Count("id", filter=Q(batch=None))).order_by())
    return {(row["annotator__number"], row["domain__slug"]): BatchesInFlight(
        row["batches"], row["requests"], row["oldest"], row["pending"]) for row in rows}


def waiting_in_batches(keys: list[WorkerKey], run: Run) -> dict[WorkerKey, int]:
    """Per worker, the run's samples taken into batch mode that have no outcome yet (pending or in a batch in
    flight): given out, not lost. One grouped query."""
    stored = Outcome.objects.filter(run=OuterRef("run"), sample=OuterRef("sample"), annotator=OuterRef("annotator"),
                                    domain=OuterRef("domain"))
    rows = (BatchRequest.objects.filter(run=run).exclude(Exists(stored))
            .values("annotator__number", "domain__slug").annotate(n=Count("id")).order_by())
    counts = {WorkerKey(row["annotator__number"], row["domain__slug"]): row["n"] for row in rows}
    return {key: counts.get(key, 0) for key in keys}
