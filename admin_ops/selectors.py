"""Reads of the store that pages, commands, archives and the API share: nothing here changes state."""

from __future__ import annotations

from django.utils import timezone

from workers_app.engine.queues import counts_from_store, worker_keys
from workers_app.fleet.rows import ensure_worker_rows
from workers_app.models import Annotator, Domain, Outcome, Sample, Worker

FORMAT = "annotation-fleet-state"
VERSION = 1
DOMAIN_FIELDS = {"slug": str, "title": str, "kind": str, "codes": list, "prompt_template": str,
                 "prompt_version": int, "parse_rules": dict, "position": int}
ANNOTATOR_FIELDS = {"number": int, "name": str, "backend": str, "model": str, "base_url": str, "api_key_env": str,
                    "requests_per_minute": int, "temperature": (int, float), "max_tokens": int,
                    "timeout_seconds": (int, float), "max_retries": int, "enabled": bool,
                    "builtin_latency_ms": int, "builtin_malformed_rate": (int, float)}


def state_document() -> dict:
    ensure_worker_rows()
    counts = counts_from_store(worker_keys())
    return {
        "format": FORMAT, "version": VERSION, "exported_at": timezone.now().isoformat(),
        "catalogue": {
            "domains": [{f: getattr(d, f) for f in DOMAIN_FIELDS} for d in Domain.objects.order_by("position")],
            "annotators": [{f: getattr(a, f) for f in ANNOTATOR_FIELDS} for a in Annotator.objects.order_by("number")],
        },
        "workers": [{"annotator": w.annotator.number, "domain": w.domain.slug, "desired_state": w.desired_state}
                    for w in Worker.objects.select_related("annotator", "domain")],
        "progress": {str(key): value for key, value in counts.items()},
        "store": {"samples": Sample.objects.count(), "outcomes": Outcome.objects.count()},
    }
