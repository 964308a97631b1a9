"""One (sample, annotator, domain): check the store, ask the backend, parse, store. Never twice."""

from __future__ import annotations

import random
import threading
import time
from collections import Counter
from contextlib import nullcontext
from dataclasses import dataclass, replace
from decimal import Decimal
from enum import Enum
from functools import cached_property

from django.conf import settings
from django.db import connection
from django.utils import timezone

from annotation_site.db import release_connection
from workers_app.models import Annotator, Domain, Outcome, Run, Sample
from workers_app.redis_client import get_redis
from workers_app.review.flags import flag_redelivered
from workers_app.runs.current import current_run, pinned_rows, run_by_id

from .backends import (
    BackendRequest,
    Completion,
    PermanentBackendError,
    StructuredOutputRefused,
    TransientBackendError,
    backend_for,
)
from .batch_requests import is_batch_mode, take_into_batch
from .budget import BudgetReached, charge, check_budget
from .catalogue_cache import catalogue_rows, forget_cached_rows
from .concurrency import admit
from .cost import add_costs, call_cost
from .flusher import process_flusher
from .keys import WorkerKey
from .logprobs import label_probability
from .parsing import ParseResult, parse_completion
from .prompts import prompt_for
from .ratelimit import RateLimiter
from .response_cache import forget, recall, remember
from .store import forget_queued, log_malformed, mark_backend_error, mark_structured_refused, store_outcomes
from .structured import AnswerFormat, answer_format

MAX_BACKOFF_S = 60.0
BUDGET_RETRY_SECONDS = 5.0  # a sample held back by the budget comes back after this (its worker pauses meanwhile)
WORKER_ACTOR = "system:worker"

# Samples being annotated right now, by thread: a worker's heartbeat reports them.
current_samples: dict[int, int] = {}


class Result(str, Enum):
    STORED = "stored"
    MALFORMED = "malformed"
    ALREADY_STORED = "already_stored"
    BLOCKED = "blocked"  # the annotator is disabled or its backend failed permanently
    GONE = "gone"  # the sample or its run was deleted (a reset) while its message waited


class RetryLater(Exception):
    """Transient failures outlasted the in-task retries: requeue the message after ``delay`` seconds."""

    def __init__(self, cause: Exception, delay: float):
        super().__init__(str(cause))
        self.delay = delay


def backoff_delay(failures: int, retry_after: float | None) -> float:
    """Exponential back-off with jitter, never shorter than the server's Retry-After."""
    delay = min(MAX_BACKOFF_S, 0.5 * 2 ** (failures - 1)) * random.uniform(0.5, 1.5)
    return min(max(delay, retry_after or 0.0), 2 * MAX_BACKOFF_S)


@dataclass
class _Job:
    key: WorkerKey
    run: Run
    sample: Sample
    annotator: Annotator
    domain: Domain
    worker: str
    free_text: bool = False  # the server refused structured output and staff allowed the fallback

    @cached_property
    def answer_format(self) -> AnswerFormat | None:
        return None if self.free_text else answer_format(self.annotator, self.domain)

    @cached_property
    def prompt(self) -> str:
        return prompt_for(self.annotator, self.domain, self.sample.text, structured=self.answer_format is not None)

    def request(self, attempt: int) -> BackendRequest:
        return BackendRequest(self.prompt, self.sample.text, self.domain.slug, tuple(self.domain.code_list), attempt,
                              self.answer_format)

    def parse(self, completion: Completion) -> ParseResult:
        return parse_completion(completion, self.domain, structured=self.answer_format is not None)

    def structured_parameters(self) -> dict:
        """How the answer was asked for, kept with the outcome."""
        if self.answer_format is None:
            return {"structured": Annotator.Structured.NONE.value}
        return {"structured": self.answer_format.mode, "schema_version": self.answer_format.schema_version}


def _samples_and_stored_sql(count: int) -> str:
    return (f"SELECT s.id, s.text, EXISTS(SELECT 1 FROM {Outcome._meta.db_table} o WHERE o.sample_id = s.id"
            f" AND o.run_id = %s AND o.annotator_id = %s AND o.domain_id = %s) FROM {Sample._meta.db_table} s"
            f" WHERE s.id IN ({', '.join(['%s'] * count)})")


def _samples_to_annotate(sample_ids: list[int], run: Run, annotator: Annotator,
                         domain: Domain) -> dict[int, tuple[str, bool]]:
    """Each sample's text and whether its outcome is stored already, in one query per message; a deleted sample
    is absent.

    Plain SQL: this runs for every message, and building the same query through the ORM cost more CPU
    than the annotation itself (the GIL makes that CPU the worker's ceiling).
    """
    if not sample_ids:
        return {}
    with connection.cursor() as cursor:
        cursor.execute(_samples_and_stored_sql(len(sample_ids)), [run.pk, annotator.pk, domain.pk, *sample_ids])
        return {row[0]: (row[1], bool(row[2])) for row in cursor.fetchall()}


def _rows(key: WorkerKey, run: Run) -> tuple[Annotator, Domain]:
    return pinned_rows(run, *catalogue_rows(key))


def _annotate_one(sample_id: int, key: WorkerKey, run: Run, found: tuple[str, bool] | None, *,
                  worker: str) -> tuple[Result, dict | None]:
    """Ask and parse; the outcome's fields come back unstored, so a message's answers are stored together."""
    annotator, domain = _rows(key, run)
    if found is None or found[1]:  # a deleted sample, or a redelivery: the LLM call was paid for already
        forget_queued(key, sample_id)
        return (Result.ALREADY_STORED if found else Result.GONE), None
    job = _Job(key, run, Sample(pk=sample_id, text=found[0]), annotator, domain, worker)
    if annotator.backend_error or not annotator.enabled:
        forget_queued(key, sample_id)
        return Result.BLOCKED, None
    try:
        return _ask_with_fallback(job)
    except PermanentBackendError as exc:
        mark_backend_error(annotator, str(exc), actor=WORKER_ACTOR)
        forget_cached_rows()  # this process's other threads stop calling at once
        forget_queued(key, sample_id)
        return Result.BLOCKED, None


def _message_run(run_id: int | None) -> Run | None:
    """The run a message was queued for (one queued before runs existed: the current run); None once deleted."""
    return current_run() if run_id is None else run_by_id(run_id)


def annotate_sample(sample_id: int, key: WorkerKey, *, worker: str, run_id: int | None = None) -> Result:
    """One sample, stored before this returns."""
    run = _message_run(run_id)
    if run is None:
        return Result.GONE
    found = _samples_to_annotate([sample_id], run, *_rows(key, run)).get(sample_id)
    result, fields = _annotate_one(sample_id, key, run, found, worker=worker)
    if fields is None:
        return result
    return result if store_outcomes(key, [fields]) else Result.ALREADY_STORED


def annotate_samples(sample_ids: list[int], key: WorkerKey, *, worker: str,
                     run_id: int | None = None) -> tuple[list[int], float]:
    """Annotate the samples of one message for its run and store their outcomes in one transaction before the
    message is acknowledged (a kill before that redelivers it: nothing lost, and the store keeps each outcome
    once); return those to retry later (lasting transient errors) and after how many seconds."""
    run = _message_run(run_id)
    if run is None:  # the run was deleted while its message waited
        return [], 0.0
    annotator, domain = _rows(key, run)
    found = _samples_to_annotate(sample_ids, run, annotator, domain)
    if is_batch_mode(annotator):  # answered by the worker's batcher; recorded before this message is acknowledged
        take_into_batch([sample_id for sample_id in sample_ids if found.get(sample_id, ("", True))[1] is False],
                        run, annotator, domain)
        return [], 0.0
    answered: list[dict] = []
    later: list[int] = []
    delay = 0.0
    thread = threading.get_ident()
    for sample_id in sample_ids:
        current_samples[thread] = sample_id
        try:
            _, fields = _annotate_one(sample_id, key, run, found.get(sample_id), worker=worker)
        except RetryLater as exc:
            later.append(sample_id)
            delay = max(delay, exc.delay)
            continue
        finally:
            current_samples.pop(thread, None)
        if fields is not None:
            answered.append(fields)
    process_flusher().note_stored(key, run, store_outcomes(key, answered))
    flag_redelivered([sample_id for sample_id in sample_ids if found.get(sample_id, ("", False))[1]])
    return later, delay


def limiter_for(annotator: Annotator) -> RateLimiter | None:
    # The built-in and trained baselines run in-process and have no API whose budget could be spent.
    if annotator.answers_in_process:
        return None
    return RateLimiter(get_redis(), annotator.number, annotator.requests_per_minute)


def _recalled(job: _Job) -> tuple[Completion, int] | None:
    """The cached answer (with the original call's latency) and how long this lookup took, in ms."""
    if not job.annotator.uses_cache:
        return None
    started = time.monotonic()
    found = recall(job.annotator, job.prompt, job.answer_format)
    return found and (found, int((time.monotonic() - started) * 1000))


def _ask_with_fallback(job: _Job) -> tuple[Result, dict]:
    """Ask as the annotator says; a server that refuses structured output stops the annotator (a backend error)
    unless staff allowed the fallback: then it is recorded once and this and later requests go as free text."""
    try:
        return _ask_all(job)
    except StructuredOutputRefused as exc:
        if not job.annotator.structured_fallback:
            raise
        mark_structured_refused(job.annotator, str(exc), actor=WORKER_ACTOR)
        forget_cached_rows()  # this process's other threads read the refusal at once, the others within seconds
        return _ask_all(replace(job, free_text=True))


def _ask_all(job: _Job) -> tuple[Result, dict]:
    """One answer, or with self-consistency (``answers_per_item`` k > 1) k answers, each asked as one is (its own
    retries, rate-limit slot, budget check and cost), combined by ``_consensus``."""
    asked = job.annotator.answers_per_item
    if asked <= 1:
        return _ask_until_answered(job)
    return _consensus([_ask_until_answered(job) for _ in range(asked)])


def _summed(answers: list[dict], name: str) -> int | None:
    values = [fields[name] for fields in answers if fields[name] is not None]
    return sum(values) if values else None


def _consensus(answers: list[tuple[Result, dict]]) -> tuple[Result, dict]:
    """The most common label among the well-formed answers (a tie: the one answered first), stored as the
    outcome of the first answer that gave it, with every answer's calls, tokens, time and cost; its confidence
    is that answer's label probability (logprobs) where the server sent one, else the share of the k answers
    that gave the label (a malformed answer agrees with none). No well-formed answer: the last malformed one."""
    votes = Counter(tuple(fields["labels"]) for result, fields in answers if result is Result.STORED)
    every = [fields for _, fields in answers]
    if votes:
        chosen, count = votes.most_common(1)[0]
        result, fields = next((r, f) for r, f in answers if r is Result.STORED and tuple(f["labels"]) == chosen)
        share = count / len(answers)
        confidence = fields["confidence"] if fields["confidence"] is not None else round(share, 6)
    else:
        (result, fields), share, confidence = answers[-1], 0.0, None
    cost = None
    for each in every:
        cost = add_costs(cost, each["cost"])
    return result, {
        **fields, "cost": cost, "confidence": confidence, "attempts": sum(f["attempts"] for f in every),
        **{name: _summed(every, name) for name in ("latency_ms", "prompt_tokens", "completion_tokens",
                                                   "cache_read_tokens", "cache_write_tokens")},
        "started_at": every[0]["started_at"],
        "parameters": {**fields["parameters"], "answers_per_item": len(answers), "agreement": round(share, 6),
                       "votes": [[list(labels), n] for labels, n in votes.most_common()]},
    }


def _ask_until_answered(job: _Job) -> tuple[Result, dict]:
    started_at = timezone.now()
    recalled = _recalled(job)
    if recalled is not None:  # no call, no slot, no cost; validated like any answer
        answer, lookup_ms = recalled
        parsed = job.parse(answer)
        if parsed.ok:
            return _answer(job, replace(answer, latency_ms=lookup_ms), parsed, 1, started_at, cost=Decimal(0),
                           cached_latency_ms=answer.latency_ms)
        _log_malformed(job, answer, parsed, 1, cost=Decimal(0), cached=True)
        forget(job.annotator, job.prompt, job.answer_format)  # the retries ask the server
    backend = backend_for(job.annotator)
    limiter = limiter_for(job.annotator)
    # The threads pool enforces no time limit, so the task keeps its own, checked before every call and every wait:
    # past it the sample is requeued (a call already sent still ends within the annotator's timeout).
    deadline = time.monotonic() + settings.TASK_SOFT_TIME_LIMIT
    transient = 0
    attempt = malformed = int(recalled is not None)
    spent = None
    while True:
        if time.monotonic() >= deadline:
            raise RetryLater(TimeoutError(f"past TASK_SOFT_TIME_LIMIT ({settings.TASK_SOFT_TIME_LIMIT} s) after "
                                          f"{attempt} call(s)"), 0.0)
        attempt += 1
        try:
            check_budget(job.annotator, job.run, actor=WORKER_ACTOR)
        except BudgetReached as exc:
            raise RetryLater(exc, BUDGET_RETRY_SECONDS) from exc
        release_connection()  # the rate limit and the LLM may keep this thread waiting for seconds
        try:
            slot = admit(limiter, deadline) if limiter is not None else nullcontext()
        except TimeoutError as exc:
            raise RetryLater(exc, 1.0) from exc
        try:
            # Sent within its slot: the request counts against the limit from its answer, always after the API
            # counted it, so a request that left late (a busy CPU) never lands above the API's rolling limit.
            with slot:
                completion = backend.complete(job.request(attempt))
        except TransientBackendError as exc:
            transient += 1
            delay = backoff_delay(transient, exc.retry_after)
            if transient > job.annotator.max_retries or time.monotonic() + delay > deadline:
                raise RetryLater(exc, delay) from exc
            time.sleep(delay)
            continue
        cost = call_cost(job.annotator.pk, completion)
        charge(job.annotator, job.run, cost)
        spent = add_costs(spent, cost)
        parsed = job.parse(completion)
        if parsed.ok:
            if job.annotator.uses_cache:
                remember(job.annotator, job.prompt, job.answer_format, completion)
            return _answer(job, completion, parsed, attempt, started_at, cost=spent)
        malformed += 1
        _log_malformed(job, completion, parsed, attempt, cost=cost)
        if malformed > job.annotator.max_retries or completion.final:
            return _answer(job, completion, parsed, attempt, started_at, cost=spent)


def _log_malformed(job: _Job, completion: Completion, parsed: ParseResult, attempt: int, *, cost: Decimal | None,
                   cached: bool = False) -> None:
    log_malformed(run=job.run, sample=job.sample, annotator=job.annotator, domain=job.domain, attempt=attempt,
                  reason=parsed.reason, reason_detail=parsed.detail, raw_answer=completion.text,
                  model=completion.model, prompt_version=job.domain.prompt_version, worker=job.worker, cost=cost,
                  cached=cached)


def _answer(job: _Job, completion: Completion, parsed: ParseResult, attempts: int, started_at, *,
            cost: Decimal | None, cached_latency_ms: int | None = None) -> tuple[Result, dict]:
    """The outcome's fields; ``cost`` is that of every call it took; a cached answer keeps its original latency
    apart from this one's."""
    status = Outcome.Status.OK if parsed.ok else Outcome.Status.MALFORMED
    fields = {
        "run": job.run, "sample": job.sample, "annotator": job.annotator, "domain": job.domain, "status": status,
        "labels": list(parsed.labels), "reason": parsed.reason, "reason_detail": parsed.detail,
        "raw_answer": completion.text, "model": completion.model, "prompt_version": job.domain.prompt_version,
        "latency_ms": completion.latency_ms, "prompt_tokens": completion.prompt_tokens,
        "completion_tokens": completion.completion_tokens, "cache_read_tokens": completion.cache_read_tokens,
        "cache_write_tokens": completion.cache_write_tokens, "attempts": attempts, "worker": job.worker,
        "cost": cost, "cached": cached_latency_ms is not None, "cached_latency_ms": cached_latency_ms,
        "confidence": _confidence(completion, parsed),
        "started_at": started_at, "parameters": {"temperature": job.annotator.temperature,
                                                 "max_tokens": job.annotator.max_tokens,
                                                 "backend": job.annotator.backend, **job.structured_parameters()},
    }
    return (Result.STORED if parsed.ok else Result.MALFORMED), fields


def _confidence(completion: Completion, parsed: ParseResult) -> float | None:
    """The label's probability: the backend's own (the trained baseline), else from the answer's logprobs."""
    if not parsed.ok:
        return None
    if completion.confidence is not None:
        return round(completion.confidence, 6)
    return label_probability(completion.logprobs, parsed.labels)
