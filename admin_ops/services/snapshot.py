"""The data of the store as JSON lines keyed by natural keys (external ids, numbers, slugs), never by row ids,
so that an archive restores into any database and two exports of the same data are byte-identical."""

from __future__ import annotations

import json
from collections.abc import Iterator

from audit.models import AuditLog
from workers_app.models import Corpus, MalformedAttempt, Outcome, ReviewItem, Sample

OUTCOME_FIELDS = ("status", "labels", "reason", "reason_detail", "raw_answer", "model", "prompt_version",
                  "parameters", "latency_ms", "prompt_tokens", "completion_tokens", "attempts", "worker", "cost",
                  "cached", "cached_latency_ms")
MALFORMED_FIELDS = ("attempt", "reason", "reason_detail", "raw_answer", "model", "prompt_version", "worker", "cost",
                    "cached")
# Fields an older archive's lines do not have: a restore gives them the model's default.
ADDED_LATER = ("cost", "cached", "cached_latency_ms")
REVIEW_FIELDS = ("reasons", "spread", "risk", "status", "adjudicated", "note", "claimed_at", "reviewed_at",
                 "alerted_at", "created_at")


def _line(record: dict) -> str:
    return json.dumps(record, sort_keys=True, ensure_ascii=False, default=str) + "\n"


def corpora_lines() -> Iterator[str]:
    for corpus in Corpus.objects.order_by("id"):
        yield _line({"file_name": corpus.file_name, "sha256": corpus.sha256, "selection": corpus.selection,
                     "sheets": corpus.sheets, "row_count": corpus.row_count, "imported_by": corpus.imported_by,
                     "imported_at": corpus.imported_at.isoformat()})


def samples_lines() -> Iterator[str]:
    rows = Sample.objects.order_by("id").values_list("external_id", "text", "corpus__sha256", "corpus__selection",
                                                     "source_sheet", "source_row")
    for external_id, text, sha, selection, sheet, row in rows.iterator(chunk_size=2000):
        yield _line({"external_id": external_id, "text": text, "corpus": [sha, selection], "source_sheet": sheet,
                     "source_row": row})


def _keyed(model, fields: tuple[str, ...], extra: tuple[str, ...]) -> Iterator[str]:
    columns = ("sample__external_id", "annotator__number", "domain__slug", *fields, *extra)
    order = ("annotator__number", "domain__slug", "sample__external_id", *(("attempt",) if "attempt" in fields else ()))
    for values in model.objects.order_by(*order).values_list(*columns).iterator(chunk_size=2000):
        record = dict(zip(("sample", "annotator", "domain", *fields, *extra), values, strict=True))
        for name in extra:
            record[name] = record[name].isoformat()
        yield _line(record)


def outcomes_lines() -> Iterator[str]:
    return _keyed(Outcome, OUTCOME_FIELDS, ("started_at", "created_at"))


def malformed_lines() -> Iterator[str]:
    return _keyed(MalformedAttempt, MALFORMED_FIELDS, ("created_at",))


def review_lines() -> Iterator[str]:
    """The clinical review queue: what reviewers adjudicated, by sample; staff named by user name."""
    rows = ReviewItem.objects.order_by("sample__external_id").values_list(
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
