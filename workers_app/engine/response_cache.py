"""The response cache: an answer a deterministic model (temperature 0) gave to one exact request, asked again.

The key is everything that shapes the answer: model, request mode, base URL, the rendered prompt, temperature and
max tokens, and for a structured request its mode and schema, so a new prompt version, another model, another
server or another answer format is a miss. Only answers that parsed are kept;
a cached answer is still validated like any other when it is used (the domain's codes may have changed since).
Entries are not outcomes: a reset keeps them; staff clear them by annotator, model or all.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

from django.db.models import Count, Q

from audit.actions import Action
from audit.actors import Actor
from audit.services import audited
from workers_app.models import Annotator, CachedResponse, Outcome

from .backends import Completion
from .structured import AnswerFormat


def cache_key(annotator: Annotator, prompt: str, answer_format: AnswerFormat | None = None) -> str:
    prompt_hash = hashlib.sha256(prompt.encode("utf-8", "surrogatepass")).hexdigest()
    parts = [annotator.model, annotator.request_mode, annotator.base_url.rstrip("/"), prompt_hash,
             repr(float(annotator.temperature)), annotator.max_tokens]
    if answer_format is not None:  # free-text keys stay as they were
        parts += answer_format.cache_part()
    return hashlib.sha256(json.dumps(parts).encode()).hexdigest()


def recall(annotator: Annotator, prompt: str, answer_format: AnswerFormat | None) -> Completion | None:
    """The cached answer to this request, or None; its latency is that of the original call."""
    entry = CachedResponse.objects.filter(key=cache_key(annotator, prompt, answer_format)).values_list(
        "text", "answered_by", "latency_ms", "prompt_tokens", "completion_tokens").first()
    return Completion(*entry) if entry else None


def remember(annotator: Annotator, prompt: str, answer_format: AnswerFormat | None, completion: Completion) -> None:
    """Keep an answer that parsed; a second copy of the same request (a redelivery) keeps the first."""
    CachedResponse.objects.bulk_create([CachedResponse(
        key=cache_key(annotator, prompt, answer_format), annotator=annotator, model=annotator.model,
        base_url=annotator.base_url.rstrip("/"), request_mode=annotator.request_mode, text=completion.text,
        answered_by=completion.model, latency_ms=completion.latency_ms, prompt_tokens=completion.prompt_tokens,
        completion_tokens=completion.completion_tokens)], ignore_conflicts=True)


def forget(annotator: Annotator, prompt: str, answer_format: AnswerFormat | None) -> None:
    """Drop an entry whose answer no longer parses, so the next attempt asks the server."""
    CachedResponse.objects.filter(key=cache_key(annotator, prompt, answer_format)).delete()


def clear_cache(*, actor: Actor, annotator: Annotator | None = None, model: str | None = None) -> int:
    """Delete the entries an annotator filled, those of one model, or (neither given) all; return how many."""
    if annotator is not None and model is not None:
        raise ValueError("clear by annotator or by model, not both")
    entries = CachedResponse.objects.all()
    if annotator is not None:
        entries, scope = entries.filter(annotator=annotator), str(annotator)
    elif model is not None:
        entries, scope = entries.filter(model=model), f"model {model}"
    else:
        scope = "all"
    with audited(Action.CLEAR_RESPONSE_CACHE, actor=actor, target=scope) as entry:
        deleted, _ = entries.delete()
        entry.detail = {"deleted": deleted}
    return deleted


@dataclass(frozen=True)
class CacheStats:
    annotator: int
    entries: int  # the entries it filled
    outcomes: int
    hits: int  # its stored outcomes answered from the cache

    @property
    def hit_rate(self) -> float | None:
        return self.hits / self.outcomes if self.outcomes else None


def cache_stats() -> list[CacheStats]:
    entries = dict(CachedResponse.objects.filter(annotator__isnull=False).values("annotator__number")
                   .annotate(n=Count("id")).values_list("annotator__number", "n"))
    outcomes = {row["annotator__number"]: row for row in Outcome.objects.values("annotator__number").annotate(
        n=Count("id"), hits=Count("id", filter=Q(cached=True)))}
    return [CacheStats(number, entries.get(number, 0), outcomes.get(number, {}).get("n", 0),
                       outcomes.get(number, {}).get("hits", 0))
            for number in Annotator.objects.values_list("number", flat=True)]
