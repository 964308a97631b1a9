"""Batch mode: a worker's samples answered through its provider's batch API instead of one live call each.

The path of a sample, each step durable before the next, so that a kill at any instant loses nothing and submits
nothing twice:

1. its message is taken like any other, and ``take_into_batch`` records a pending ``BatchRequest`` before the
   message is acknowledged (a kill before that redelivers the message; a redelivered copy finds the request);
2. the worker's batcher thread gathers up to ``batch_size`` pending requests, checks the batch's worst case
   against the budgets, records a ``Batch`` (state ``submitting``, its requests and reservation named) and counts
   the reservation as spent, all *before* the create call;
   then records the provider's id (``in_flight``). A restart that finds a ``submitting`` batch looks for it at the
   provider by its ref and adopts it, or submits it if the provider never got it;
3. the batcher polls the batch; once ended, its answers are stored through the live path (parsed and validated,
   malformed attempts logged, flags, cost at the batch price, review items) and the batch settles its reservation.
   A request that failed, expired or was cancelled goes back to pending once, then is stored as an error
   (malformed, reason ``batch_error``); a malformed answer goes back once too when the annotator allows retries (the
   outcome then carries both answers' cost); a result naming a request the batch did not ask is ignored and logged.
"""

from __future__ import annotations

import logging
import math
import threading
import uuid
from dataclasses import replace
from datetime import timedelta
from decimal import Decimal
from functools import cache

from django.conf import settings
from django.db import close_old_connections, transaction
from django.db.models import F
from django.utils import timezone

from audit.actions import Action
from audit.services import audited
from workers_app.models import Annotator, Batch, BatchRequest, Domain, Outcome, Run, Sample, Worker
from workers_app.redis_client import get_redis
from workers_app.runs.current import run_by_id

from .annotate import WORKER_ACTOR, _answer, _Job, _log_malformed, _rows
from .backends import Completion, PermanentBackendError, TransientBackendError, count_call
from .batch_api import BatchClient, BatchResult, batch_client_for
from .batch_requests import is_batch_mode, pending_requests
from .budget import BudgetReached, charge, check_budget, forget_spend, refuse_past_budget, settle
from .catalogue_cache import catalogue_rows, forget_cached_rows
from .cost import add_costs, call_cost, cost_of, price_on
from .flusher import process_flusher
from .keys import WorkerKey
from .parsing import ParseResult
from .store import mark_backend_error, store_outcomes

log = logging.getLogger(__name__)

# A failed, expired or cancelled request goes back once, then counts as an error; a malformed answer is asked once
# more (as a live call is retried) when the annotator allows retries.
BATCH_ATTEMPTS = 2
ERROR_REASON = "batch_error"
SETTLE_SECONDS = 1.0  # a partial batch waits this long after the last sample was taken, with the queue empty
BYTES_PER_TOKEN = 3  # the worst-case estimate of a prompt's tokens (English averages about four)
MAX_LATENCY_MS = 2**31 - 1


def _jobs(key: WorkerKey, run: Run, requests: list[BatchRequest], worker: str) -> dict[str, _Job]:
    """The live path's job for each request, by custom_id (the samples a reset deleted are left out)."""
    annotator, domain = _rows(key, run)
    free_text = annotator.batch_protocol == Annotator.BatchProtocol.ANTHROPIC  # Message Batches: no schema sent
    texts = dict(Sample.objects.filter(pk__in=[r.sample_id for r in requests]).values_list("pk", "text"))
    return {r.custom_id: _Job(key, run, Sample(pk=r.sample_id, text=texts[r.sample_id]), annotator, domain, worker,
                              free_text=free_text) for r in requests if r.sample_id in texts}


def worst_case(annotator: Annotator, jobs: list[_Job]) -> Decimal:
    """Every request's estimated prompt tokens plus its max_tokens, at the batch price of today."""
    price = price_on(annotator.pk, timezone.localdate())
    if price is None:
        return Decimal(0)
    tokens_in = sum(math.ceil(len(job.prompt.encode()) / BYTES_PER_TOKEN) + 8 for job in jobs)
    return cost_of(price, tokens_in, annotator.max_tokens * len(jobs), batch=True) or Decimal(0)


def may_submit(key: WorkerKey, annotator: Annotator) -> bool:
    """Not while the annotator is disabled or stopped by a backend error, nor while its worker is paused."""
    if not annotator.enabled or annotator.backend_error:
        return False
    return not Worker.objects.filter(annotator__number=key.annotator, domain__slug=key.domain).exclude(
        desired_state=Worker.Desired.RUNNING).exists()


def _ready_to_submit(key: WorkerKey, annotator: Annotator, requests: list[BatchRequest]) -> bool:
    """A full batch at once; a partial one once the queue is empty and no sample came for SETTLE_SECONDS."""
    if len(requests) >= annotator.batch_size:
        return True
    newest = max(r.created_at for r in requests)
    return (get_redis().llen(key.queue_key) == 0
            and timezone.now() - newest >= timedelta(seconds=SETTLE_SECONDS))


def submit_pending(key: WorkerKey, *, worker: str) -> Batch | None:
    """Submit one batch of this worker's pending requests when it is due; the batch, or None."""
    annotator, _ = catalogue_rows(key)
    if not may_submit(key, annotator):
        return None
    first = pending_requests(annotator, Domain.objects.get(slug=key.domain)).order_by("pk").first()
    if first is None:
        return None
    run = run_by_id(first.run_id)
    requests = list(BatchRequest.objects.filter(run=run, annotator=annotator, domain_id=first.domain_id,
                                                batch=None).order_by("pk")[: annotator.batch_size])
    if not _ready_to_submit(key, annotator, requests):
        return None
    jobs = _jobs(key, run, requests, worker)
    reserved = worst_case(annotator, list(jobs.values()))
    try:
        check_budget(annotator, run, actor=WORKER_ACTOR)  # spent already: the workers pause, as in live mode
        refuse_past_budget(annotator, run, reserved)
    except BudgetReached as exc:
        log.warning("%s: batch of %d not submitted: %s", key, len(requests), exc)
        return None
    with transaction.atomic():
        batch = Batch.objects.create(run=run, annotator=annotator, domain_id=first.domain_id,
                                     protocol=annotator.batch_protocol, ref=uuid.uuid4().hex,
                                     requests=len(jobs), reserved=reserved)
        BatchRequest.objects.filter(pk__in=[r.pk for r in requests if r.custom_id in jobs]).update(
            batch=batch, attempts=F("attempts") + 1)
    # Counted only once its row records it: a kill before this line leaves the batch submitting, and its
    # resumption rebuilds the spend from the store (which counts the reservation), so none is lost or leaked.
    charge(annotator, run, reserved)
    _send(batch, batch_client_for(annotator), jobs)
    return batch


def _send(batch: Batch, client: BatchClient, jobs: dict[str, _Job]) -> None:
    provider_id = client.submit(batch.ref, [(cid, job.request(1)) for cid, job in jobs.items()])
    _record_in_flight(batch, provider_id)


def _record_in_flight(batch: Batch, provider_id: str) -> None:
    Batch.objects.filter(pk=batch.pk).update(provider_id=provider_id, state=Batch.State.IN_FLIGHT,
                                             submitted_at=timezone.now())
    log.info("batch %s submitted as %s (%d requests)", batch.ref, provider_id, batch.requests)


def resume_submitting(key: WorkerKey, *, worker: str) -> int:
    """Batches recorded as submitting (a kill or an error came between the record and the provider's id): adopt
    the provider's batch if it has one under our ref, else submit it now. Return how many were resolved."""
    annotator, _ = catalogue_rows(key)
    resolved = 0
    submitting = list(Batch.objects.select_related("run").filter(annotator=annotator, domain__slug=key.domain,
                                                                 state=Batch.State.SUBMITTING))
    for run in {batch.run for batch in submitting}:
        forget_spend({annotator.number}, run)  # the reservation may or may not have been charged before a kill
    for batch in submitting:
        client = batch_client_for(annotator)
        known = set(Batch.objects.exclude(provider_id="").values_list("provider_id", flat=True))
        found = client.find(batch.ref, created_since=batch.created_at - timedelta(seconds=5),
                            count=batch.requests, known=known)
        if found:
            _record_in_flight(batch, found)
        elif may_submit(key, annotator):
            _send(batch, client, _jobs(key, batch.run, list(batch.items.all()), worker))
        else:
            continue
        resolved += 1
    return resolved


def poll_in_flight(key: WorkerKey, *, worker: str) -> int:
    """Ask the provider about each batch in flight and store those that ended; return how many ended."""
    annotator, _ = catalogue_rows(key)
    ended = 0
    for batch in Batch.objects.select_related("run").filter(annotator=annotator, domain__slug=key.domain,
                                                            state=Batch.State.IN_FLIGHT):
        client = batch_client_for(annotator)
        status = client.status(batch.provider_id)
        Batch.objects.filter(pk=batch.pk).update(provider_status=status.status[:40])
        if status.ended:
            end_batch(key, batch, client, status.status, worker=worker)
            ended += 1
    return ended


def cancel_batches(batches: list[Batch], *, actor) -> int:
    """Ask the provider to cancel these batches in flight (staff's choice, with a pause or alone), with one audit
    row; return how many it accepted. A cancelled batch ends as usual: what it answered is stored, the rest goes
    back to pending once (a paused worker submits nothing until resumed)."""
    with audited(Action.CANCEL_BATCHES, actor=actor, target=", ".join(b.ref for b in batches)[:200],
                 parameters={"batches": [b.provider_id for b in batches]}) as entry:
        cancelled, refused = [], {}
        for batch in batches:
            if batch.state != Batch.State.IN_FLIGHT:
                refused[batch.ref] = f"not in flight ({batch.state})"
                continue
            try:
                batch_client_for(batch.annotator).cancel(batch.provider_id)
            except (TransientBackendError, PermanentBackendError) as exc:
                refused[batch.ref] = str(exc)
                continue
            cancelled.append(batch.ref)
        entry.detail = {"cancelled": cancelled, "refused": refused}
    return len(cancelled)


def _error_fields(job: _Job, request: BatchRequest, error: str, started_at) -> dict:
    completion = Completion(error, job.annotator.model, 0)
    return _answer(job, completion, ParseResult(False, (), ERROR_REASON, error[:1000]), request.attempts,
                   started_at, cost=None)[1]


def end_batch(key: WorkerKey, batch: Batch, client: BatchClient, provider_status: str, *, worker: str) -> None:
    """Store the ended batch's answers through the live path, send its failed requests back once, and settle.
    Safe to repeat after a kill: outcomes stored already are skipped, and the batch settles once."""
    requests = {r.custom_id: r for r in batch.items.all()}
    jobs = _jobs(key, batch.run, list(requests.values()), worker)
    stored = set(Outcome.objects.filter(run=batch.run, annotator_id=batch.annotator_id, domain_id=batch.domain_id,
                                        sample_id__in=[r.sample_id for r in requests.values()])
                 .values_list("sample_id", flat=True))
    started_at = batch.submitted_at or batch.created_at
    latency = min(MAX_LATENCY_MS, int((timezone.now() - started_at).total_seconds() * 1000))
    answered: list[dict] = []
    failed: dict[str, str] = {}
    malformed: dict[str, Decimal | None] = {}  # asked again in a later batch, with what this answer cost
    paid: Decimal | None = None
    seen: set[str] = set()
    for result in client.results(batch.provider_id):
        job = jobs.get(result.custom_id)
        if job is None or result.custom_id in seen:
            log.warning("batch %s: result for %r ignored: the batch did not ask it (or answered it twice)",
                        batch.ref, result.custom_id[:80])
            continue
        seen.add(result.custom_id)
        if job.sample.pk in stored:
            continue
        # /metrics counts a batch's answers with the live requests: status "batch" (or "batch_error"), and tokens.
        count_call(batch.annotator.number, "batch" if result.completion else "batch_error", 1, result.completion)
        if result.completion is None:
            failed[result.custom_id] = result.error or "failed"
            continue
        fields, cost = _answered(job, requests[result.custom_id], result, latency, started_at)
        paid = add_costs(paid, cost)
        if fields is None:
            malformed[result.custom_id] = cost
        else:
            answered.append(fields)
    failed.update({cid: f"no result; the batch ended {provider_status}" for cid, job in jobs.items()
                   if cid not in seen and job.sample.pk not in stored})
    again = [requests[cid].pk for cid in failed if requests[cid].attempts < BATCH_ATTEMPTS]
    errors = [_error_fields(jobs[cid], requests[cid], error, started_at) for cid, error in failed.items()
              if requests[cid].attempts >= BATCH_ATTEMPTS]
    process_flusher().note_stored(key, batch.run, store_outcomes(key, answered + errors))
    BatchRequest.objects.filter(pk__in=again, batch=batch).update(batch=None, last_error=provider_status)
    for cid, cost in malformed.items():
        BatchRequest.objects.filter(pk=requests[cid].pk, batch=batch).update(
            batch=None, last_error="malformed answer", spent=add_costs(requests[cid].spent, cost))
    actual = paid or Decimal(0)
    if Batch.objects.filter(pk=batch.pk, state=Batch.State.IN_FLIGHT).update(
            state=Batch.State.ENDED, ended_at=timezone.now(), cost=actual, succeeded=len(answered),
            failed=len(failed), provider_status=provider_status[:40]):
        settle(batch.annotator, batch.run, batch.reserved, actual)
    log.info("batch %s ended %s: %d answered, %d back to pending (%d malformed), %d errors", batch.ref,
             provider_status, len(answered), len(again) + len(malformed), len(malformed), len(errors))


def _answered(job: _Job, request: BatchRequest, result: BatchResult, latency: int,
              started_at) -> tuple[dict | None, Decimal | None]:
    """The outcome's fields, as a live answer's (parsed, validated, malformed logged, at the batch price, with what
    its earlier answers cost), and what this answer cost. No fields for a malformed answer that is to be asked
    again: once, when the annotator allows retries, as a live call would be."""
    completion = replace(result.completion, latency_ms=latency)
    cost = call_cost(job.annotator.pk, completion, batch=True)
    parsed = job.parse(completion)
    if not parsed.ok:
        _log_malformed(job, completion, parsed, request.attempts, cost=cost)
        if request.attempts < BATCH_ATTEMPTS and job.annotator.max_retries > 0 and not completion.final:
            return None, cost
    return _answer(job, completion, parsed, request.attempts, started_at,
                   cost=add_costs(request.spent, cost))[1], cost


class Batcher:
    """Inside a worker process: every BATCH_POLL_SECONDS, for each worker it serves, resolve batches left
    submitting, poll those in flight and, in batch mode, submit what is due. A stopped worker's batches wait at the
    provider until its process runs again."""

    def __init__(self, every_seconds: float):
        self.every_seconds = every_seconds
        self.stopping = threading.Event()
        self.thread: threading.Thread | None = None

    def start(self, keys: list[WorkerKey], worker: str) -> None:
        self.thread = threading.Thread(target=self._run, args=(keys, worker), name="batcher", daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.stopping.set()
        if self.thread is not None:
            self.thread.join(timeout=30)

    def _run(self, keys: list[WorkerKey], worker: str) -> None:
        while not self.stopping.is_set():
            for key in keys:
                self.tick(key, worker)
            self.stopping.wait(self.every_seconds)

    def tick(self, key: WorkerKey, worker: str) -> None:
        try:
            annotator = catalogue_rows(key)[0]
            if annotator.answers_in_process:
                return
            # Batches recorded or in flight are seen through even after a switch back to live mode: they are paid.
            resume_submitting(key, worker=worker)
            poll_in_flight(key, worker=worker)
            while is_batch_mode(annotator) and submit_pending(key, worker=worker) is not None \
                    and not self.stopping.is_set():
                pass
        except TransientBackendError as exc:
            log.warning("%s: batch API unavailable, trying again in %g s: %s", key, self.every_seconds, exc)
        except PermanentBackendError as exc:
            mark_backend_error(catalogue_rows(key)[0], str(exc), actor=WORKER_ACTOR)
            forget_cached_rows()
        except Exception:  # the batcher must outlive any one failure; the next tick starts from the store
            log.exception("%s: batch step failed", key)
        finally:
            close_old_connections()


@cache
def process_batcher() -> Batcher:
    """The one batcher of this worker process."""
    return Batcher(settings.BATCH_POLL_SECONDS)
