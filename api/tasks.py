"""The background jobs the API and the workspace start, run by the control worker: a consolidation, an archive, a
corpus import (or only its check). Each reports its steps (api.progress) and returns what its page shows."""

from __future__ import annotations

from pathlib import Path

from celery import shared_task

from admin_ops.services.archive import create_archive
from admin_ops.services.consolidate import consolidate
from annotation_site.uploads import forget_upload, kept_upload
from workers_app.fleet.selectors import chosen_run
from workers_app.importing.readers import count_rows_hint
from workers_app.importing.service import ImportRejected, check_corpus, import_corpus
from workers_app.references.selectors import reference_by_name
from workers_app.runs.files import consolidated_dir

from .progress import RowProgress, report_progress

SHOWN_PROBLEMS = 1000  # a job's result lists at most this many problems (and says how many there are)


def job_workbook(job: str, run: str | None) -> Path:
    """In the run's consolidated folder; a job started before runs existed (no run) wrote to DATA_DIR/consolidated."""
    return consolidated_dir(run) / f"api-{job}.xlsx"


def _steps(kind: str, job: str):
    return lambda done, total, stage: report_progress(kind, job, done, total, stage)


@shared_task(bind=True, name="api.consolidate")
def consolidate_task(self, actor: str, run: str | None = None, reference: str | None = None) -> dict:
    report = consolidate(job_workbook(self.request.id, run), actor=actor, run=chosen_run(run),
                         reference=reference_by_name(reference) if reference else None,
                         progress=_steps("consolidation", self.request.id))
    return {"file": report.path.name, "review": report.review}


@shared_task(bind=True, name="api.archive")
def archive_task(self, actor: str, name: str, run: str | None = None) -> dict:
    archive = create_archive(name, actor=actor, run=run, progress=_steps("archive", self.request.id))
    return {"name": archive.name, "file": archive.file_name, "size": archive.size}


def _problems(problems: list) -> dict:
    return {"problems": [str(p) for p in problems[:SHOWN_PROBLEMS]], "problem_count": len(problems)}


@shared_task(bind=True, name="api.import_corpus")
def import_task(self, actor: str, upload: str, name: str, options: dict, check_only: bool) -> dict:
    """Check every row of a kept upload, and unless ``check_only`` import it (all or none, or the valid rows with
    skip_invalid). A refused file is a result, not a failure: it lists the problems by row."""
    path = kept_upload(upload)
    rows = RowProgress("import", self.request.id, count_rows_hint(path, options.get("sheets"), name),
                       "checking every row")
    if check_only:
        checks = {option: value for option, value in options.items() if option != "skip_invalid"}
        found = check_corpus(path, display_name=name, progress=rows, **checks)
        rows.write()
        return {"checked": True, "rows": found.rows, "new": found.new, "already_present": found.already_present,
                "already_imported": found.already_imported.pk if found.already_imported else None,
                "warnings": [str(p) for p in found.warnings[:SHOWN_PROBLEMS]], **_problems(found.problems)}
    try:
        report = import_corpus(path, actor=actor, display_name=name, progress=rows, **options)
    except ImportRejected as exc:
        return {"rejected": True, **_problems(exc.problems)}
    finally:
        rows.write()
    forget_upload(upload)
    return {"imported": report.imported, "already_present": report.already_present, "summary": report.summary(),
            "corpus": report.corpus.pk, "warnings": [str(p) for p in report.warnings[:SHOWN_PROBLEMS]],
            **_problems(report.skipped)}
