"""The Worker rows: one per annotator x domain, created on demand for this host."""

from __future__ import annotations

from django.conf import settings

from workers_app.engine.keys import WorkerKey
from workers_app.engine.queues import worker_keys
from workers_app.models import Annotator, Domain, Worker


def ensure_worker_rows(host: str | None = None) -> None:
    existing = set(Worker.objects.values_list("annotator_id", "domain_id"))
    missing = [Worker(annotator=a, domain=d, host=host or settings.FLEET_HOST)
               for a in Annotator.objects.all() for d in Domain.objects.all() if (a.pk, d.pk) not in existing]
    Worker.objects.bulk_create(missing, ignore_conflicts=True)


def workers_for(keys: list[WorkerKey]) -> list[Worker]:
    ensure_worker_rows()
    wanted = {(k.annotator, k.domain) for k in keys}
    rows = Worker.objects.select_related("annotator", "domain")
    return [w for w in rows if (w.annotator.number, w.domain.slug) in wanted]


def select_workers(annotator: int | None = None, domain: str | None = None) -> list[Worker]:
    """The workers in scope; UnknownWorker names a bad annotator or domain."""
    return workers_for(worker_keys(annotator, domain))


def key_of(worker: Worker) -> WorkerKey:
    return WorkerKey(worker.annotator.number, worker.domain.slug)
