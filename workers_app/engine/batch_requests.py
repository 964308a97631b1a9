"""Batch mode's first step: a sample taken from the queue is recorded as a pending batch request before its message
is acknowledged (see ``engine.batch`` for the rest)."""

from __future__ import annotations

from django.db.models import QuerySet

from workers_app.models import Annotator, BatchRequest, Domain, Run


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
