"""Which run the fleet works on, and the catalogue rows (annotators, domains, samples) as a run uses them."""

from __future__ import annotations

import copy
import threading
import time

from django.db import IntegrityError
from django.db.models import QuerySet
from django.utils import timezone

from workers_app.models import DEFAULT_RUN, Annotator, Domain, Run, Sample

CACHE_SECONDS = 2.0
# What a run pins, per catalogue row: the fields that decide the prompt and how the answer is read, and the
# model settings that decide the answer. Keys, URLs and limits stay live (a rotated key must keep working).
# The answer's schema is derived from kind, codes and parse rules, so pinning them pins it; schema_version names it.
PINNED_DOMAIN_FIELDS = ("title", "kind", "codes", "prompt_template", "prompt_version", "parse_rules", "few_shot",
                        "schema_version")
PINNED_ANNOTATOR_FIELDS = ("name", "backend", "request_mode", "structured", "structured_fallback", "model",
                           "temperature", "max_tokens", "max_input_chars", "builtin_profile", "baseline_version",
                           "answers_per_item")
# Pinned settings that runs made before they existed lack: such a run keeps asking as it did then (free text, one
# answer per item).
PINNED_LATER = {"structured": Annotator.Structured.NONE, "structured_fallback": False, "answers_per_item": 1}

_runs: dict[int | None, tuple[float, Run | None]] = {}
# (run, annotator, domain) ids -> the rows they were made from, and the pinned copies.
_pinned: dict[tuple[int, int, int], tuple[Run, Annotator, Domain, Annotator, Domain]] = {}
_lock = threading.Lock()


class NoCurrentRun(LookupError):
    """No run is current (all were deleted): nothing can be queued until one is made current."""


def _cached(run_id: int | None) -> Run | None:
    now = time.monotonic()
    with _lock:
        found = _runs.get(run_id)
    if found is not None and now - found[0] < CACHE_SECONDS:
        return found[1]
    run = Run.objects.filter(pk=run_id).first() if run_id is not None else _current_or_default()
    with _lock:
        _runs[run_id] = (now, run)
    return run


def _current_or_default() -> Run | None:
    """The current run; on a store with no run at all (a new or flushed database), the default run, made now."""
    run = Run.objects.filter(is_current=True).first()
    if run is not None:
        return run
    if not Run.objects.exists():
        try:
            return Run.objects.get_or_create(name=DEFAULT_RUN, defaults={
                "is_current": True, "all_samples": True, "created_by": "system",
                "description": "Takes every sample and follows the live catalogue.", "started_at": timezone.now()})[0]
        except IntegrityError:  # made by another process since the read above
            pass
    # Read once more: another process (a worker, the agent) may have made the default run between the two reads
    # above, and answering None then would fail a launch with "no run is current" for CACHE_SECONDS.
    return Run.objects.filter(is_current=True).first()


def current_run() -> Run:
    """The run the fleet works on (read at most every CACHE_SECONDS per process)."""
    run = _cached(None)
    if run is None:
        raise NoCurrentRun("no run is current: make one current (manage.py runs switch NAME)")
    return run


def run_by_id(run_id: int) -> Run | None:
    """A message's run; None once deleted."""
    return _cached(run_id)


def forget_cached_runs() -> None:
    with _lock:
        _runs.clear()
        _pinned.clear()


def run_samples(run: Run) -> QuerySet[Sample]:
    return Sample.objects.all() if run.all_samples else Sample.objects.filter(run_members__run=run)


def takes_part(run: Run, annotator: int, domain: str) -> bool:
    """The default run takes every annotator and domain, also those added later."""
    return run.all_samples or (annotator in run.annotators and domain in run.domains)


def _with(row, values: dict, fields: tuple[str, ...]):
    pinned = copy.copy(row)
    for name in fields:
        if name in values:
            setattr(pinned, name, values[name])
    return pinned


def pinned_annotator(run: Run, annotator: Annotator) -> Annotator:
    """The live row with what the run pinned put over it (unchanged for the default run)."""
    values = run.pinned.get("annotators", {}).get(str(annotator.number))
    return _with(annotator, {} if values is None else {**PINNED_LATER, **values}, PINNED_ANNOTATOR_FIELDS)


def pinned_domain(run: Run, domain: Domain) -> Domain:
    return _with(domain, run.pinned.get("domains", {}).get(domain.slug, {}), PINNED_DOMAIN_FIELDS)


def pinned_rows(run: Run, annotator: Annotator, domain: Domain) -> tuple[Annotator, Domain]:
    """Called for every sample: the copies are made again only when one of the three (cached) rows was re-read."""
    if not run.pinned:
        return annotator, domain
    slot = (run.pk, annotator.pk, domain.pk)
    made = _pinned.get(slot)
    if made is None or made[0] is not run or made[1] is not annotator or made[2] is not domain:
        made = (run, annotator, domain, pinned_annotator(run, annotator), pinned_domain(run, domain))
        _pinned[slot] = made  # a race only makes the same copies twice
    return made[3], made[4]


def run_annotators(run: Run) -> list[Annotator]:
    """The run's annotators as it uses them (every live one for the default run)."""
    rows = Annotator.objects.all() if run.all_samples else Annotator.objects.filter(number__in=run.annotators)
    return [pinned_annotator(run, a) for a in rows.order_by("number")]


def run_domains(run: Run) -> list[Domain]:
    rows = Domain.objects.all() if run.all_samples else Domain.objects.filter(slug__in=run.domains)
    return [pinned_domain(run, d) for d in rows.order_by("position", "slug")]


def pin(annotators: list[Annotator], domains: list[Domain]) -> dict:
    """What a new run keeps of the catalogue as it is now."""
    return {
        "annotators": {str(a.number): {name: getattr(a, name) for name in PINNED_ANNOTATOR_FIELDS}
                       for a in annotators},
        "domains": {d.slug: {name: getattr(d, name) for name in PINNED_DOMAIN_FIELDS} for d in domains},
    }
