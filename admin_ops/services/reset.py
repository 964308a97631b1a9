"""Reset a domain, an annotator, or everything: stop, purge, archive first, delete, leave stopped."""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field

from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.utils import timezone

from annotation_site.db import checkpoint_wal
from audit.actions import Action
from audit.actors import Actor
from audit.services import audited
from workers_app.engine.budget import forget_spend
from workers_app.engine.gold import forget_gold
from workers_app.engine.queues import queue_length
from workers_app.fleet.rows import key_of, select_workers
from workers_app.fleet.services import retire_worker, run_bulk
from workers_app.models import (
    Alert,
    Corpus,
    MalformedAttempt,
    Outcome,
    Run,
    Sample,
    Worker,
    WorkerEvent,
    WorkerMetric,
)
from workers_app.runs.current import current_run, forget_cached_runs
from workers_app.runs.files import workbook_path

from .archive import create_archive


class ResetRefused(ValueError):
    pass


@dataclass
class ResetPreview:
    """What a reset would delete: shown to staff before they confirm."""

    scope: str
    workers: list[str]
    outcomes: int
    malformed: int
    workbooks: list[str]
    queued_messages: int
    samples: int = 0
    archive: str = ""
    purged: int = 0
    notes: list[str] = field(default_factory=list)

    def summary(self) -> str:
        extra = f", {self.samples} samples and their corpora" if self.samples else ""
        return (f"{self.scope}: {len(self.workers)} worker(s), {self.outcomes} outcomes, {self.malformed} malformed "
                f"attempts, {len(self.workbooks)} workbook(s), {self.queued_messages} queued message(s){extra}")


def _scope(annotator: int | None, domain: str | None, factory: bool) -> str:
    if factory:
        if annotator is not None or domain is not None:
            raise ResetRefused("a factory reset covers everything: give no --domain or --annotator with it")
        return "everything"
    if annotator is None and domain is None:
        raise ResetRefused("say what to reset: --domain NAME, --annotator N (or both), or --factory")
    return " ".join(part for part in (f"annotator {annotator}" if annotator else "",
                                      f"domain {domain}" if domain else "") if part)


def _outcome_filter(workers: list[Worker], factory: bool) -> dict:
    """A reset deletes the current run's outcomes (other runs keep theirs); a factory reset every run's."""
    scope = {} if factory else {"run": current_run()}
    return {**scope, "annotator_id__in": {w.annotator_id for w in workers},
            "domain_id__in": {w.domain_id for w in workers}}


def preview_reset(*, annotator: int | None = None, domain: str | None = None, factory: bool = False) -> ResetPreview:
    scope = _scope(annotator, domain, factory)
    workers = select_workers(annotator, domain)
    keys = [key_of(w) for w in workers]
    return ResetPreview(
        scope=scope, workers=[w.name for w in workers],
        outcomes=Outcome.objects.filter(**_outcome_filter(workers, factory)).count(),
        malformed=MalformedAttempt.objects.filter(**_outcome_filter(workers, factory)).count(),
        workbooks=[workbook_path(k).name for k in keys if workbook_path(k).exists()],
        queued_messages=sum(queue_length(k) for k in keys),
        samples=Sample.objects.count() if factory else 0,
    )


def reset_data(*, actor: Actor, annotator: int | None = None, domain: str | None = None, factory: bool = False,
               backup: bool = True, keep_excel: bool = False) -> ResetPreview:
    if factory and not isinstance(actor, str) and not actor.is_superuser:
        raise PermissionDenied("a factory reset needs a superuser")
    preview = preview_reset(annotator=annotator, domain=domain, factory=factory)
    workers = select_workers(annotator, domain)
    parameters = {"annotator": annotator, "domain": domain, "factory": factory, "backup": backup,
                  "keep_excel": keep_excel}
    with audited(Action.RESET_DATA, actor=actor, target=preview.scope, parameters=parameters, atomic=False) as entry:
        if backup:
            stamp = timezone.now().strftime("%Y%m%d-%H%M%S")
            preview.archive = create_archive(f"before-reset-{stamp}", actor=actor).name
        retired = run_bulk(retire_worker, workers, actor=actor, keep_workbook=keep_excel)
        refused = [f"{r.worker}: {r.message}" for r in retired if not r.ok]
        if refused:
            raise ResetRefused("these workers could not be retired, so no outcome was deleted: " + "; ".join(refused))
        preview.purged = sum(r.detail["purged"] for r in retired)
        with transaction.atomic():
            Outcome.objects.filter(**_outcome_filter(workers, factory)).delete()
            MalformedAttempt.objects.filter(**_outcome_filter(workers, factory)).delete()
            if factory:
                for model in (WorkerMetric, Alert, WorkerEvent, Run, Sample, Corpus):
                    model.objects.all().delete()
        forget_spend({w.annotator.number for w in workers}, None if factory else current_run())
        forget_gold(None if factory else current_run())
        if factory:
            forget_cached_runs()  # the default run is made again on first use
            if not keep_excel:
                shutil.rmtree(settings.DATA_DIR / "runs", ignore_errors=True)
        entry.detail = {"summary": preview.summary(), "archive": preview.archive, "purged": preview.purged}
    checkpoint_wal()
    return preview


def project_name() -> str:
    """What staff type to confirm a factory reset in the admin."""
    return settings.PROJECT_NAME
