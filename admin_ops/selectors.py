"""Reads of the store that pages, commands, archives and the API share: nothing here changes state."""

from __future__ import annotations

from decimal import Decimal

from django.utils import timezone

from workers_app.engine.queues import counts_from_store, worker_keys
from workers_app.fleet.rows import ensure_worker_rows
from workers_app.models import Annotator, AnnotatorPrice, Domain, Outcome, ReferenceSet, Run, Sample, Worker
from workers_app.runs.current import NoCurrentRun, current_run
from workers_app.runs.definitions import NULLABLE_TEXT, run_definition

FORMAT = "annotation-fleet-state"
# 2: each annotator's budget and cache_responses, the price versions and the run definitions.
# 3: the reference sets' provenance (their labels travel in archives); each annotator's structured-output mode and
# fallback, the prices of prompt-cache tokens.
# 4: each annotator's request_logprobs and answers_per_item (self-consistency) and its batch mode (mode,
# batch_protocol, batch_size); each domain's review thresholds (review_below_confidence, review_below_agreement);
# the batch discount of each price version (batch_percent).
VERSION = 4
NULLABLE_NUMBER = (int, float, type(None))
DOMAIN_FIELDS = {"slug": str, "title": str, "kind": str, "codes": list, "prompt_template": str,
                 "prompt_version": int, "parse_rules": dict, "position": int,
                 "review_below_confidence": NULLABLE_NUMBER, "review_below_agreement": NULLABLE_NUMBER}
ANNOTATOR_FIELDS = {"number": int, "name": str, "backend": str, "model": str, "base_url": str, "api_key_env": str,
                    "requests_per_minute": int, "temperature": (int, float), "max_tokens": int,
                    "timeout_seconds": (int, float), "max_retries": int, "enabled": bool,
                    "builtin_latency_ms": int, "builtin_malformed_rate": (int, float), "budget": NULLABLE_TEXT,
                    "cache_responses": bool, "structured": str, "structured_fallback": bool,
                    "request_logprobs": bool, "answers_per_item": int, "mode": str, "batch_protocol": str,
                    "batch_size": int}
# What version 1 documents lack: their import leaves these as the console has them.
ADDED_IN_VERSION_2 = ("budget", "cache_responses")
# A reference set as a state document holds it: provenance and how its file was read, without the labels.
REFERENCE_STATE_FIELDS = {"name": str, "kind": str, "description": str, "source": str, "licence": str,
                          "citation": str, "raters": (int, type(None)), "value_map": dict, "file_name": str,
                          "sha256": str, "labels": int}
# Decimals as text: exact, where a JSON number would pass through a float.
PRICE_FIELDS = {"annotator": int, "valid_from": str, "input_per_1k": str, "output_per_1k": str,
                "cache_read_per_1k": NULLABLE_TEXT, "cache_write_per_1k": NULLABLE_TEXT, "currency": str,
                "batch_percent": str}
# What older documents lack, by the version that added it: their import leaves these as the console has them.
ADDED_IN_VERSION = {2: ("budget", "cache_responses"),
                    3: ("structured", "structured_fallback", "cache_read_per_1k", "cache_write_per_1k"),
                    4: ("request_logprobs", "answers_per_item", "review_below_confidence", "review_below_agreement",
                        "mode", "batch_protocol", "batch_size", "batch_percent")}


def fields_of_version(fields: dict, version: int) -> dict:
    """The fields a document of ``version`` holds."""
    later = {name for added, names in ADDED_IN_VERSION.items() if added > version for name in names}
    return {name: kind for name, kind in fields.items() if name not in later}


def _plain(value: object) -> object:
    return str(value) if isinstance(value, Decimal) else value


def _price_record(price: AnnotatorPrice) -> dict:
    return {"annotator": price.annotator.number, "valid_from": price.valid_from.isoformat(),
            **{name: _text_or_none(getattr(price, name))
               for name in ("input_per_1k", "output_per_1k", "cache_read_per_1k", "cache_write_per_1k")},
            "currency": price.currency, "batch_percent": str(price.batch_percent)}


def _text_or_none(value: Decimal | None) -> str | None:
    return None if value is None else str(value)


def _progress() -> dict[str, dict[str, int]]:
    """The current run's counts per worker; none while no run is current (an archive is still made then)."""
    try:
        run = current_run()
    except NoCurrentRun:
        return {}
    return {str(key): value for key, value in counts_from_store(worker_keys(), run).items()}


def state_document() -> dict:
    ensure_worker_rows()
    progress = _progress()
    return {
        "format": FORMAT, "version": VERSION, "exported_at": timezone.now().isoformat(),
        "catalogue": {
            "domains": [{f: getattr(d, f) for f in DOMAIN_FIELDS} for d in Domain.objects.order_by("position")],
            "annotators": [{f: _plain(getattr(a, f)) for f in ANNOTATOR_FIELDS}
                           for a in Annotator.objects.order_by("number")],
        },
        "prices": [_price_record(p) for p in AnnotatorPrice.objects.select_related("annotator")
                   .order_by("annotator__number", "valid_from")],
        "runs": [run_definition(run) for run in Run.objects.order_by("name")],
        "references": [{**{f: getattr(r, f) for f in REFERENCE_STATE_FIELDS if f != "labels"},
                        "labels": r.labels.count()}
                       for r in ReferenceSet.objects.filter(system=False).order_by("name")],
        "workers": [{"annotator": w.annotator.number, "domain": w.domain.slug, "desired_state": w.desired_state}
                    for w in Worker.objects.select_related("annotator", "domain")],
        "progress": progress,
        "store": {"samples": Sample.objects.count(), "outcomes": Outcome.objects.count()},
    }
