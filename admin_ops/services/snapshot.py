"""The data of the store as JSON lines keyed by natural keys (run names, external ids, numbers, slugs), never by
row ids, so that an archive restores into any database and two exports of the same data are byte-identical.

Each takes an optional run: then only that run, its outcomes and malformed attempts, and the samples, corpora and
review items they need."""

from __future__ import annotations

import json
from collections.abc import Iterator

from django.db.models import Q, QuerySet

from audit.models import AuditLog
from workers_app.models import Corpus, MalformedAttempt, Outcome, ReferenceLabel, ReferenceSet, ReviewItem, Run, Sample
from workers_app.runs.current import run_samples
from workers_app.runs.definitions import run_definition

OUTCOME_FIELDS = ("status", "labels", "reason", "reason_detail", "raw_answer", "model", "prompt_version",
                  "parameters", "latency_ms", "prompt_tokens", "completion_tokens", "cache_read_tokens",
                  "cache_write_tokens", "attempts", "worker", "cost", "cached", "cached_latency_ms", "confidence")
MALFORMED_FIELDS = ("attempt", "reason", "reason_detail", "raw_answer", "model", "prompt_version", "worker", "cost",
                    "cached")
# Fields an older archive's lines do not have: a restore gives them the model's default.
ADDED_LATER = ("cost", "cached", "cached_latency_ms", "cache_read_tokens", "cache_write_tokens", "confidence")
REVIEW_FIELDS = ("reasons", "spread", "risk", "status", "adjudicated", "note", "claimed_at", "reviewed_at",
                 "alerted_at", "created_at")
# A reference set's provenance and how it was read; its labels by (set, sample, domain, rater). The review queue's
# adjudicated set is not among them: the review lines are its source, and a restore derives it again.
REFERENCE_FIELDS = ("name", "kind", "description", "source", "licence", "citation", "raters", "value_map",
                    "file_name", "sha256", "selection", "created_by")
REFERENCE_LABEL_FIELDS = ("rater", "labels", "source_row")


def _line(record: dict) -> str:
    return json.dumps(record, sort_keys=True, ensure_ascii=False, default=str) + "\n"


def _samples(run: Run | None) -> QuerySet[Sample]:
    if run is None or run.all_samples:
        return Sample.objects.all()
    worked_on = (Q(pk__in=run_samples(run).values("pk")) | Q(pk__in=run.outcomes.values("sample_id"))
                 | Q(pk__in=run.malformed_attempts.values("sample_id")))
    return Sample.objects.filter(worked_on)


def runs_lines(run: Run | None = None) -> Iterator[str]:
    for each in Run.objects.filter(**({"pk": run.pk} if run else {})).order_by("name"):
        yield _line(run_definition(each))


def corpora_lines(run: Run | None = None) -> Iterator[str]:
    corpora = Corpus.objects.filter(pk__in=_samples(run).values("corpus_id")) if run else Corpus.objects.all()
    for corpus in corpora.order_by("id"):
        yield _line({"file_name": corpus.file_name, "sha256": corpus.sha256, "selection": corpus.selection,
                     "sheets": corpus.sheets, "row_count": corpus.row_count, "imported_by": corpus.imported_by,
                     "imported_at": corpus.imported_at.isoformat()})


def samples_lines(run: Run | None = None) -> Iterator[str]:
    rows = _samples(run).order_by("id").values_list("external_id", "text", "corpus__sha256", "corpus__selection",
                                                     "source_sheet", "source_row")
    for external_id, text, sha, selection, sheet, row in rows.iterator(chunk_size=2000):
        yield _line({"external_id": external_id, "text": text, "corpus": [sha, selection], "source_sheet": sheet,
                     "source_row": row})


def _keyed(model, fields: tuple[str, ...], extra: tuple[str, ...], run: Run | None) -> Iterator[str]:
    keys = ("run", "sample", "annotator", "domain")
    columns = ("run__name", "sample__external_id", "annotator__number", "domain__slug", *fields, *extra)
    order = ("run__name", "annotator__number", "domain__slug", "sample__external_id",
             *(("attempt",) if "attempt" in fields else ()))
    rows = model.objects.filter(**({"run": run} if run else {})).order_by(*order).values_list(*columns)
    for values in rows.iterator(chunk_size=2000):
        record = dict(zip((*keys, *fields, *extra), values, strict=True))
        for name in extra:
            record[name] = record[name].isoformat()
        yield _line(record)


def outcomes_lines(run: Run | None = None) -> Iterator[str]:
    return _keyed(Outcome, OUTCOME_FIELDS, ("started_at", "created_at"), run)


def malformed_lines(run: Run | None = None) -> Iterator[str]:
    return _keyed(MalformedAttempt, MALFORMED_FIELDS, ("created_at",), run)


def review_lines(run: Run | None = None) -> Iterator[str]:
    """The clinical review queue: what reviewers adjudicated, by sample; staff named by user name."""
    items = ReviewItem.objects.filter(sample__in=_samples(run)) if run else ReviewItem.objects.all()
    rows = items.order_by("sample__external_id").values_list(
        "sample__external_id", "claimed_by__username", "reviewed_by__username", *REVIEW_FIELDS)
    for external_id, claimed_by, reviewed_by, *values in rows.iterator(chunk_size=2000):
        record = {"sample": external_id, "claimed_by": claimed_by, "reviewed_by": reviewed_by,
                  **dict(zip(REVIEW_FIELDS, values, strict=True))}
        for name in ("claimed_at", "reviewed_at", "alerted_at", "created_at"):
            record[name] = record[name].isoformat() if record[name] else None
        yield _line(record)


def audit_lines() -> Iterator[str]:
    for row in AuditLog.objects.order_by("id").values().iterator(chunk_size=2000):
        yield _line(row)


def _imported_sets() -> QuerySet[ReferenceSet]:
    return ReferenceSet.objects.filter(system=False)


def references_lines(run: Run | None = None) -> Iterator[str]:
    """Every imported reference set with its provenance (also in the archive of one run: the sets are not a run's)."""
    for found in _imported_sets().order_by("name"):
        yield _line({**{name: getattr(found, name) for name in REFERENCE_FIELDS},
                     "created_at": found.created_at.isoformat()})


def reference_labels_lines(run: Run | None = None) -> Iterator[str]:
    """Their labels; in the archive of one run, those of the samples it holds."""
    labels = ReferenceLabel.objects.filter(reference_set__in=_imported_sets())
    if run is not None:
        labels = labels.filter(sample__in=_samples(run))
    rows = labels.order_by("reference_set__name", "domain__slug", "sample__external_id", "rater").values_list(
        "reference_set__name", "sample__external_id", "domain__slug", *REFERENCE_LABEL_FIELDS)
    for name, external_id, slug, *values in rows.iterator(chunk_size=2000):
        yield _line({"reference": name, "sample": external_id, "domain": slug,
                     **dict(zip(REFERENCE_LABEL_FIELDS, values, strict=True))})
