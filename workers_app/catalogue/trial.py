"""Trying an annotator: one domain's prompt for a few chosen posts, sent through the real backend client, with the
raw answers, how each parses, tokens and latency shown and nothing stored (no outcome, no cache entry, no budget
charge). The calls are real, so they take rate-limit slots and are audited with what they cost."""

from __future__ import annotations

import copy
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import nullcontext
from dataclasses import dataclass
from decimal import Decimal
from functools import reduce

import redis

from audit.actions import Action
from audit.actors import Actor
from audit.services import audited
from workers_app.engine.annotate import limiter_for
from workers_app.engine.backends import (
    Backend,
    BackendRequest,
    Completion,
    PermanentBackendError,
    TransientBackendError,
    backend_for,
)
from workers_app.engine.cost import add_costs, call_cost
from workers_app.engine.parsing import ParseResult, parse_completion
from workers_app.engine.prompts import prompt_for
from workers_app.engine.ratelimit import RateLimiter
from workers_app.engine.structured import answer_format
from workers_app.models import Annotator, Domain, Sample

MAX_POSTS = 3
# A trial answers a page: each call gets at most this long (the annotator's own timeout if shorter) and one attempt,
# and waits at most SLOT_WAIT_SECONDS for a rate-limit slot.
CALL_SECONDS = 60.0
SLOT_WAIT_SECONDS = 10.0


class TrialRefused(ValueError):
    """The trial cannot be made as asked; nothing was sent."""


@dataclass(frozen=True)
class TrialAnswer:
    external_id: str
    prompt: str
    completion: Completion | None  # None: no answer came
    parsed: ParseResult | None
    error: str = ""
    cost: Decimal | None = None


def _ask(backend: Backend, limiter: RateLimiter | None, request: BackendRequest) -> Completion | str:
    """The backend's answer, or why there is none."""
    try:
        slot = limiter.acquire(time.monotonic() + SLOT_WAIT_SECONDS) if limiter is not None else nullcontext()
        with slot:
            return backend.complete(request)
    except TimeoutError:
        return f"no rate-limit slot within {SLOT_WAIT_SECONDS:g} s: the annotator's workers use its limit now"
    except (TransientBackendError, PermanentBackendError) as exc:
        return str(exc)
    except redis.RedisError as exc:
        return f"the rate limiter in Redis does not answer ({exc})"


def _trial_settings(annotator: Annotator) -> Annotator:
    trial = copy.copy(annotator)
    trial.timeout_seconds = min(annotator.timeout_seconds, CALL_SECONDS)
    return trial


def try_annotator(annotator: Annotator, domain: Domain, samples: list[Sample], *, actor: Actor,
                  client_address: str | None = None) -> list[TrialAnswer]:
    """Send ``domain``'s prompt for each of ``samples`` (at most MAX_POSTS) to ``annotator``, at once; store nothing
    but the audit row (what was asked, tokens, latency and cost, never an answer's text)."""
    if not 1 <= len(samples) <= MAX_POSTS:
        raise TrialRefused(f"choose 1 to {MAX_POSTS} posts (got {len(samples)})")
    parameters = {"domain": domain.slug, "samples": [sample.external_id for sample in samples]}
    # Not one transaction: the calls take seconds, and an open write transaction on SQLite stops every worker.
    with audited(Action.TRY_ANNOTATOR, actor=actor, target=str(annotator), parameters=parameters,
                 client_address=client_address, atomic=False) as entry:
        trial = _trial_settings(annotator)
        held_to = answer_format(trial, domain)  # as a worker asks: in free text, or held to the domain's schema
        requests = [BackendRequest(prompt_for(trial, domain, sample.text, structured=held_to is not None), sample.text,
                                   domain.slug, tuple(domain.code_list), attempt=1, answer_format=held_to)
                    for sample in samples]
        try:
            backend = backend_for(trial)
        except PermanentBackendError as exc:  # e.g. the key's variable is not set: no call can be made
            replies: list[Completion | str] = [str(exc)] * len(samples)
        else:
            limiter = limiter_for(trial)
            with ThreadPoolExecutor(len(requests)) as pool:
                replies = list(pool.map(lambda request: _ask(backend, limiter, request), requests))
        answers = [_answer(annotator, domain, sample, request, reply)
                   for sample, request, reply in zip(samples, requests, replies, strict=True)]
        total = reduce(add_costs, (answer.cost for answer in answers), None)
        entry.detail = {"answers": [_audited(answer) for answer in answers],
                        "cost": None if total is None else f"{total.normalize():f}"}
    return answers


def _answer(annotator: Annotator, domain: Domain, sample: Sample, request: BackendRequest,
            reply: Completion | str) -> TrialAnswer:
    if isinstance(reply, str):
        return TrialAnswer(sample.external_id, request.prompt, None, None, error=reply)
    parsed = parse_completion(reply, domain, structured=request.answer_format is not None)
    return TrialAnswer(sample.external_id, request.prompt, reply, parsed, cost=call_cost(annotator.pk, reply))


def _audited(answer: TrialAnswer) -> dict:
    completion, parsed = answer.completion, answer.parsed
    if completion is None:
        return {"sample": answer.external_id, "error": answer.error}
    return {"sample": answer.external_id, "ok": parsed.ok, "labels": list(parsed.labels), "reason": parsed.reason,
            "latency_ms": completion.latency_ms, "prompt_tokens": completion.prompt_tokens,
            "completion_tokens": completion.completion_tokens, "model": completion.model}
