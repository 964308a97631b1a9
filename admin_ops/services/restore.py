"""Restore an archive: verify it, then bring its records back into the store by their natural keys and write
its workbooks atomically. Nothing is extracted by path: members are read in memory and workbooks are written
under their own checked names only."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from django.conf import settings
from django.db import transaction

from annotation_site.files import atomic_write
from audit.actions import Action
from audit.actors import Actor
from audit.services import audited
from workers_app.engine.queues import sync_checkpoints
from workers_app.models import Annotator, Corpus, Domain, MalformedAttempt, Outcome, Sample

from .archive import DATA_MEMBERS, ArchiveError, read_members, verify_archive
from .snapshot import MALFORMED_FIELDS, OUTCOME_FIELDS

BATCH = 2000
WORKBOOK_MEMBER = re.compile(r"^workbooks/(annotator_\d+_[a-z0-9_-]+\.xlsx)$")


@dataclass
class RestorePlan:
    archive: str
    corpora: int = 0
    samples: int = 0
    outcomes: int = 0
    malformed: int = 0
    workbooks: list[str] = field(default_factory=list)

    def summary(self) -> str:
        return (f"{self.archive}: {self.corpora} corpora, {self.samples} samples, {self.outcomes} outcomes, "
                f"{self.malformed} malformed attempts and {len(self.workbooks)} workbook(s) to restore")


class RestoreConflict(ValueError):
    """The archive disagrees with the store (a sample id with other text, an unknown annotator or domain)."""


def _existing_outcome_keys() -> set[tuple[str, int, str]]:
    return set(Outcome.objects.values_list("sample__external_id", "annotator__number", "domain__slug"))


def _existing_malformed_keys() -> set[tuple]:
    return set(MalformedAttempt.objects.values_list("sample__external_id", "annotator__number", "domain__slug",
                                                    "attempt", "created_at"))


def _workbook_differs(name: str, data: bytes) -> bool:
    target = settings.ANNOTATIONS_DIR / name
    return not target.exists() or target.read_bytes() != data


def _plan(archive: str, data: dict[str, list[dict]], workbooks: dict[str, bytes]) -> RestorePlan:
    corpora = set(Corpus.objects.values_list("sha256", "selection"))
    samples = dict(Sample.objects.values_list("external_id", "text"))
    for record in data["samples"]:
        known = samples.get(record["external_id"])
        if known is not None and known != record["text"]:
            raise RestoreConflict(f"sample {record['external_id']} exists with other text; nothing was restored")
    outcomes = _existing_outcome_keys()
    malformed = _existing_malformed_keys()
    return RestorePlan(
        archive=archive,
        corpora=sum((c["sha256"], c["selection"]) not in corpora for c in data["corpora"]),
        samples=sum(s["external_id"] not in samples for s in data["samples"]),
        outcomes=sum((o["sample"], o["annotator"], o["domain"]) not in outcomes for o in data["outcomes"]),
        malformed=sum((m["sample"], m["annotator"], m["domain"], m["attempt"], datetime.fromisoformat(m["created_at"]))
                      not in malformed for m in data["malformed"]),
        workbooks=sorted(name for name, content in workbooks.items() if _workbook_differs(name, content)),
    )


def _restore_samples(data: dict[str, list[dict]]) -> None:
    corpora = {}
    for record in data["corpora"]:
        corpus, _ = Corpus.objects.get_or_create(sha256=record["sha256"], selection=record["selection"], defaults={
            "file_name": record["file_name"], "sheets": record["sheets"], "row_count": record["row_count"],
            "imported_by": record["imported_by"]})
        corpora[(record["sha256"], record["selection"])] = corpus
    present = set(Sample.objects.values_list("external_id", flat=True))
    missing = [Sample(external_id=r["external_id"], text=r["text"], corpus=corpora[tuple(r["corpus"])],
                      source_sheet=r["source_sheet"], source_row=r["source_row"])
               for r in data["samples"] if r["external_id"] not in present]
    Sample.objects.bulk_create(missing, batch_size=BATCH)


def _lookups() -> tuple[dict, dict, dict]:
    return (dict(Sample.objects.values_list("external_id", "pk")), dict(Annotator.objects.values_list("number", "pk")),
            dict(Domain.objects.values_list("slug", "pk")))


def _keyed_rows(model, records: list[dict], fields: tuple[str, ...], dates: tuple[str, ...], skip: set) -> list:
    samples, annotators, domains = _lookups()
    rows = []
    for record in records:
        key = (record["sample"], record["annotator"], record["domain"])
        if key in skip or (*key, record.get("attempt"), record.get("created_at")) in skip:
            continue
        if record["annotator"] not in annotators or record["domain"] not in domains:
            raise RestoreConflict(f"annotator {record['annotator']} or domain {record['domain']} is not in the "
                                  "catalogue; import the archive's state.json first")
        values = {name: record[name] for name in fields}
        values.update({name: datetime.fromisoformat(record[name]) for name in dates})
        rows.append(model(sample_id=samples[record["sample"]], annotator_id=annotators[record["annotator"]],
                          domain_id=domains[record["domain"]], **values))
    return rows


def _write_workbook(name: str, data: bytes) -> None:
    settings.ANNOTATIONS_DIR.mkdir(parents=True, exist_ok=True)
    atomic_write(settings.ANNOTATIONS_DIR / name, lambda temp: temp.write_bytes(data))


def _apply(data: dict[str, list[dict]], workbooks: dict[str, bytes]) -> None:
    with transaction.atomic():
        _restore_samples(data)
        Outcome.objects.bulk_create(_keyed_rows(Outcome, data["outcomes"], OUTCOME_FIELDS,
                                                ("started_at", "created_at"), _existing_outcome_keys()),
                                    batch_size=BATCH)
        malformed_seen = {(*k[:4], k[4].isoformat()) for k in _existing_malformed_keys()}
        MalformedAttempt.objects.bulk_create(_keyed_rows(MalformedAttempt, data["malformed"], MALFORMED_FIELDS,
                                                         ("created_at",), malformed_seen), batch_size=BATCH)
    for name, content in workbooks.items():
        if _workbook_differs(name, content):
            _write_workbook(name, content)
    sync_checkpoints()


def _records(data: bytes) -> list[dict]:
    return [json.loads(line) for line in data.decode().splitlines() if line]


def restore_archive(path: str | Path, *, actor: Actor, dry_run: bool = False) -> RestorePlan:
    """Verify, then bring back what the store and the workbooks lack."""
    path = Path(path)
    verification = verify_archive(path)
    if not verification.ok:
        raise ArchiveError(f"{path.name} failed verification; nothing was restored:\n"
                           + "\n".join(f"  - {p}" for p in verification.problems))
    members = read_members(path)
    data = {name.split("/")[1].split(".")[0]: _records(members[name]) for name in DATA_MEMBERS}
    workbooks = {m.group(1): members[name] for name in members if (m := WORKBOOK_MEMBER.match(name))}
    plan = _plan(path.name, data, workbooks)
    if dry_run:
        return plan
    with audited(Action.RESTORE_ARCHIVE, actor=actor, target=path.name, atomic=False) as entry:
        _apply(data, workbooks)
        entry.detail = {"summary": plan.summary()}
    return plan
