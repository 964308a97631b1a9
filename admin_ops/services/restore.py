"""Restore an archive: verify it, check every data line by the models' own field rules, then bring its records
back into the store by their natural keys and write the workbooks of the catalogue's workers atomically. Nothing
is extracted by path: members are read in memory and workbooks are written under the catalogue's names only."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db import models, transaction

from annotation_site.files import atomic_write
from audit.actions import Action
from audit.actors import Actor
from audit.services import audited
from workers_app.engine.queues import sync_checkpoints, worker_keys
from workers_app.models import Annotator, Corpus, Domain, MalformedAttempt, Outcome, ReviewItem, Sample

from .archive import OPTIONAL_MEMBERS, ArchiveError, read_members, verify_archive
from .snapshot import ADDED_LATER, MALFORMED_FIELDS, OUTCOME_FIELDS, REVIEW_FIELDS

BATCH = 2000
MAX_PROBLEMS_SHOWN = 20
WORKBOOKS = "workbooks/"


def _is_text(value: object) -> bool:
    return isinstance(value, str)


def _is_number(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_user_name(value: object) -> bool:
    return value is None or (isinstance(value, str) and len(value) <= 150)


def _is_corpus_key(value: object) -> bool:
    return isinstance(value, list) and len(value) == 2 and all(isinstance(part, str) for part in value)


# The natural keys a line names other rows by: (what to expect, the check).
KEYED = {"sample": ("text", _is_text), "annotator": ("a whole number", _is_number), "domain": ("text", _is_text)}
# What each restored member's lines hold: the model whose field rules check the values, the value fields, the keys.
RECORDS: dict[str, tuple[type[models.Model], tuple[str, ...], dict[str, tuple[str, Callable]]]] = {
    "corpora": (Corpus, ("file_name", "sha256", "selection", "sheets", "row_count", "imported_by"), {}),
    "samples": (Sample, ("external_id", "text", "source_sheet", "source_row"),
                {"corpus": ("[sha256, selection]", _is_corpus_key)}),
    "outcomes": (Outcome, (*OUTCOME_FIELDS, "started_at", "created_at"), KEYED),
    "malformed": (MalformedAttempt, (*MALFORMED_FIELDS, "created_at"), KEYED),
    "review": (ReviewItem, REVIEW_FIELDS, {"sample": ("text", _is_text), "claimed_by": ("a user name or null",
                                                                                     _is_user_name),
                                           "reviewed_by": ("a user name or null", _is_user_name)}),
}


@dataclass
class RestorePlan:
    archive: str
    corpora: int = 0
    samples: int = 0
    outcomes: int = 0
    malformed: int = 0
    review: int = 0
    workbooks: list[str] = field(default_factory=list)

    def summary(self) -> str:
        return (f"{self.archive}: {self.corpora} corpora, {self.samples} samples, {self.outcomes} outcomes, "
                f"{self.malformed} malformed attempts, {self.review} review item(s) and {len(self.workbooks)} "
                "workbook(s) to restore")


class RestoreConflict(ValueError):
    """The archive disagrees with the store (a sample id with other text, an unknown annotator or domain)."""


def _listed(problems: list[str]) -> str:
    shown = [f"  - {p}" for p in problems[:MAX_PROBLEMS_SHOWN]]
    if len(problems) > MAX_PROBLEMS_SHOWN:
        shown.append(f"  ... and {len(problems) - MAX_PROBLEMS_SHOWN} more")
    return "\n".join(shown)


def _member(kind: str) -> str:
    return f"data/{kind}.jsonl"


class _BadLine(ValueError):
    """A data line that cannot be restored; the message says why."""


def _no_constant(name: str) -> None:
    raise ValueError(f"{name} is not a number JSON allows")


def _record(line: str, kind: str) -> dict:
    """One line as the values its row will take, checked by the model's field rules; _BadLine says why not."""
    model, fields, keys = RECORDS[kind]
    try:
        record = json.loads(line, parse_constant=_no_constant)
    except RecursionError:
        raise _BadLine("not JSON (nested too deeply)") from None
    except ValueError as exc:
        raise _BadLine(f"not JSON ({exc})") from None
    if not isinstance(record, dict):
        raise _BadLine("expected a JSON object")
    for name in ADDED_LATER:
        if name in fields and name not in record:  # a line of an older archive
            record[name] = model._meta.get_field(name).get_default()
    missing = [name for name in (*keys, *fields) if name not in record]
    if missing:
        raise _BadLine(f"missing field '{missing[0]}'")
    for name, (expected, fits) in keys.items():
        if not fits(record[name]):
            raise _BadLine(f"{name}: expected {expected}")
    values, problems = {}, []
    for name in fields:
        try:
            values[name] = _field_value(model._meta.get_field(name), record[name])
        except ValidationError as exc:
            problems.append(f"{name}: {' '.join(exc.messages)}")
    if problems:
        raise _BadLine("; ".join(problems))
    return {**{name: record[name] for name in keys}, **values}


def _field_value(field: models.Field, raw: object) -> object:
    """``raw`` as the field stores it, by the field's own rules (type, choices, length, range). Unlike a form it
    takes empty text where the field's default is empty text: stored rows hold such values."""
    value = field.to_python(raw)
    if value is None and not field.null:
        raise ValidationError(field.error_messages["null"], code="null")
    if value not in field.empty_values:
        field.validate(value, None)
    field.run_validators(value)
    return value


def _records(kind: str, data: bytes, problems: list[str]) -> list[dict]:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        problems.append(f"{_member(kind)}: not UTF-8 text (byte {exc.start})")
        return []
    # split, not splitlines: a JSON string may hold U+2028 or other characters splitlines breaks at.
    lines = text.split("\n")
    if lines[-1] == "":
        lines.pop()
    records = []
    for number, line in enumerate(lines, start=1):
        try:
            records.append(_record(line, kind))
        except _BadLine as exc:
            problems.append(f"{_member(kind)} line {number}: {exc}")
    return records


def _data(members: dict[str, bytes]) -> dict[str, list[dict]]:
    problems: list[str] = []
    data = {kind: _records(kind, members.get(_member(kind), b"") if _member(kind) in OPTIONAL_MEMBERS
                           else members[_member(kind)], problems) for kind in RECORDS}
    if problems:
        raise ArchiveError(f"the archive's data cannot be restored; nothing was restored:\n{_listed(problems)}")
    return data


def _outcome_key(record: dict) -> tuple:
    return record["sample"], record["annotator"], record["domain"]


def _malformed_key(record: dict) -> tuple:
    return *_outcome_key(record), record["attempt"], record["created_at"]


def _repeated_lines(kind: str, records: list[dict], key: Callable[[dict], object]) -> list[str]:
    first: dict = {}
    problems = []
    for number, record in enumerate(records, start=1):
        if key(record) in first:
            problems.append(f"{_member(kind)} line {number}: repeats line {first[key(record)]}")
        first.setdefault(key(record), number)
    return problems


def _reference_problems(data: dict[str, list[dict]]) -> list[str]:
    """Every line that names a corpus, sample, annotator or domain neither the archive nor the store has."""
    corpora = set(Corpus.objects.values_list("sha256", "selection")) | {(c["sha256"], c["selection"])
                                                                        for c in data["corpora"]}
    samples = set(Sample.objects.values_list("external_id", flat=True)) | {s["external_id"] for s in data["samples"]}
    numbers = set(Annotator.objects.values_list("number", flat=True))
    slugs = set(Domain.objects.values_list("slug", flat=True))
    problems = _repeated_lines("samples", data["samples"], lambda s: s["external_id"])
    problems += _repeated_lines("outcomes", data["outcomes"], _outcome_key)
    problems += _repeated_lines("review", data["review"], lambda r: r["sample"])
    problems += [f"{_member('review')} line {n}: sample {r['sample']!r:.80} is neither in {_member('samples')} nor "
                 "in the store" for n, r in enumerate(data["review"], start=1) if r["sample"] not in samples]
    problems += [f"{_member('samples')} line {n}: corpus {s['corpus']} is neither in {_member('corpora')} nor in "
                 "the store" for n, s in enumerate(data["samples"], start=1) if tuple(s["corpus"]) not in corpora]
    for kind in ("outcomes", "malformed"):
        for number, record in enumerate(data[kind], start=1):
            where = f"{_member(kind)} line {number}"
            if record["sample"] not in samples:
                problems.append(f"{where}: sample {record['sample']!r:.80} is neither in {_member('samples')} nor "
                                "in the store")
            if record["annotator"] not in numbers or record["domain"] not in slugs:
                problems.append(f"{where}: annotator {record['annotator']} or domain {record['domain']!r:.80} is "
                                "not in the catalogue; import the archive's state.json first")
    return problems


def _workbooks(members: dict[str, bytes]) -> dict[str, bytes]:
    """The archive's workbooks by file name; every one must belong to a worker of the catalogue."""
    found = {name.removeprefix(WORKBOOKS): data for name, data in members.items() if name.startswith(WORKBOOKS)}
    strangers = sorted(set(found) - {key.workbook.name for key in worker_keys()})
    if strangers:
        raise RestoreConflict(f"workbooks of workers the catalogue does not have: {', '.join(strangers)}; import "
                              "the archive's state.json first; nothing was restored")
    return found


def _existing_outcome_keys() -> set[tuple[str, int, str]]:
    return set(Outcome.objects.values_list("sample__external_id", "annotator__number", "domain__slug"))


def _existing_malformed_keys() -> set[tuple]:
    return set(MalformedAttempt.objects.values_list("sample__external_id", "annotator__number", "domain__slug",
                                                    "attempt", "created_at"))


def _workbook_differs(name: str, data: bytes) -> bool:
    target = settings.ANNOTATIONS_DIR / name
    return not target.exists() or target.read_bytes() != data


def _plan(archive: str, data: dict[str, list[dict]], workbooks: dict[str, bytes]) -> RestorePlan:
    problems = _reference_problems(data)
    if problems:
        raise RestoreConflict(f"the archive disagrees with the store; nothing was restored:\n{_listed(problems)}")
    corpora = set(Corpus.objects.values_list("sha256", "selection"))
    samples = dict(Sample.objects.values_list("external_id", "text"))
    for record in data["samples"]:
        known = samples.get(record["external_id"])
        if known is not None and known != record["text"]:
            raise RestoreConflict(f"sample {record['external_id']} exists with other text; nothing was restored")
    outcomes = _existing_outcome_keys()
    malformed = _existing_malformed_keys()
    reviewed = _existing_review_samples()
    return RestorePlan(
        archive=archive,
        corpora=sum((c["sha256"], c["selection"]) not in corpora for c in data["corpora"]),
        samples=sum(s["external_id"] not in samples for s in data["samples"]),
        outcomes=sum(_outcome_key(o) not in outcomes for o in data["outcomes"]),
        malformed=sum(_malformed_key(m) not in malformed for m in data["malformed"]),
        review=sum(r["sample"] not in reviewed for r in data["review"]),
        workbooks=sorted(name for name, content in workbooks.items() if _workbook_differs(name, content)),
    )


def _restore_samples(data: dict[str, list[dict]]) -> None:
    for record in data["corpora"]:
        Corpus.objects.get_or_create(sha256=record["sha256"], selection=record["selection"], defaults={
            "file_name": record["file_name"], "sheets": record["sheets"], "row_count": record["row_count"],
            "imported_by": record["imported_by"]})
    corpora = {(c.sha256, c.selection): c for c in Corpus.objects.all()}
    present = set(Sample.objects.values_list("external_id", flat=True))
    missing = [Sample(external_id=r["external_id"], text=r["text"], corpus=corpora[tuple(r["corpus"])],
                      source_sheet=r["source_sheet"], source_row=r["source_row"])
               for r in data["samples"] if r["external_id"] not in present]
    Sample.objects.bulk_create(missing, batch_size=BATCH)


def _keyed_rows(kind: str, records: list[dict], key: Callable[[dict], tuple], existing: set) -> list:
    model, fields, _ = RECORDS[kind]
    samples = dict(Sample.objects.values_list("external_id", "pk"))
    annotators = dict(Annotator.objects.values_list("number", "pk"))
    domains = dict(Domain.objects.values_list("slug", "pk"))
    return [model(sample_id=samples[r["sample"]], annotator_id=annotators[r["annotator"]],
                  domain_id=domains[r["domain"]], **{name: r[name] for name in fields})
            for r in records if key(r) not in existing]


def _existing_review_samples() -> set[str]:
    return set(ReviewItem.objects.values_list("sample__external_id", flat=True))


def _review_rows(records: list[dict]) -> list[ReviewItem]:
    """The archive's items of samples the store has no item for (an item in the store holds newer work); staff
    are found by user name, and a name this database does not know leaves the field empty."""
    existing = _existing_review_samples()
    samples = dict(Sample.objects.values_list("external_id", "pk"))
    users = dict(get_user_model().objects.values_list("username", "pk"))
    return [ReviewItem(sample_id=samples[r["sample"]], claimed_by_id=users.get(r["claimed_by"]),
                       reviewed_by_id=users.get(r["reviewed_by"]), **{name: r[name] for name in REVIEW_FIELDS})
            for r in records if r["sample"] not in existing]


def _write_workbook(name: str, data: bytes) -> None:
    settings.ANNOTATIONS_DIR.mkdir(parents=True, exist_ok=True)
    atomic_write(settings.ANNOTATIONS_DIR / name, lambda temp: temp.write_bytes(data))


def _apply(data: dict[str, list[dict]], workbooks: dict[str, bytes]) -> None:
    with transaction.atomic():
        _restore_samples(data)
        Outcome.objects.bulk_create(_keyed_rows("outcomes", data["outcomes"], _outcome_key,
                                                _existing_outcome_keys()), batch_size=BATCH)
        MalformedAttempt.objects.bulk_create(_keyed_rows("malformed", data["malformed"], _malformed_key,
                                                         _existing_malformed_keys()), batch_size=BATCH)
        ReviewItem.objects.bulk_create(_review_rows(data["review"]), batch_size=BATCH)
    for name, content in workbooks.items():
        if _workbook_differs(name, content):
            _write_workbook(name, content)
    sync_checkpoints()


@dataclass
class _Prepared:
    data: dict[str, list[dict]]
    workbooks: dict[str, bytes]
    plan: RestorePlan


def _prepared(path: Path) -> _Prepared:
    verification = verify_archive(path)
    if not verification.ok:
        raise ArchiveError(f"{path.name} failed verification; nothing was restored:\n{_listed(verification.problems)}")
    members = read_members(path, verification.manifest["members"])
    data, workbooks = _data(members), _workbooks(members)
    return _Prepared(data, workbooks, _plan(path.name, data, workbooks))


def restore_archive(path: str | Path, *, actor: Actor, dry_run: bool = False) -> RestorePlan:
    """Verify and check everything, then bring back what the store and the workbooks lack. A refused restore (not
    a dry run) leaves a failed audit row saying why."""
    path = Path(path)
    if dry_run:
        return _prepared(path).plan
    with audited(Action.RESTORE_ARCHIVE, actor=actor, target=path.name, atomic=False) as entry:
        prepared = _prepared(path)
        _apply(prepared.data, prepared.workbooks)
        entry.detail = {"summary": prepared.plan.summary()}
    return prepared.plan
