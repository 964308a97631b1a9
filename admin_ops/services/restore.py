"""Restore an archive: verify it, check every data line by the models' own field rules, then bring its records
back into the store by their natural keys and write the workbooks of the catalogue's workers atomically. Nothing
is extracted by path: members are read in memory and workbooks are written under the catalogue's names only.

Runs: a restore makes the archive's runs the store lacks (same name, pinned settings and members) and puts each
outcome, malformed attempt and workbook in its run; a run the store has already must agree on its settings, and
keeps its members. A version 1 archive (made before runs) restores into the default run, made when missing.

Which run is current changes only on a store where no work was done yet: when no run is current, or the current
one is the default run and has no outcome, the archive's current run becomes current (the default run when the
archive names none and no run is current); otherwise the store's current run stays.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db import models, transaction
from django.utils import timezone

from annotation_site.db import checkpoint_wal
from annotation_site.field_rules import stored_value
from annotation_site.files import atomic_write
from audit.actions import Action
from audit.actors import Actor
from audit.services import audited
from workers_app.engine.queues import sync_checkpoints, worker_keys
from workers_app.models import (
    ADJUDICATED_SET,
    DEFAULT_RUN,
    Annotator,
    Corpus,
    Domain,
    MalformedAttempt,
    Outcome,
    ReferenceLabel,
    ReferenceSet,
    ReviewItem,
    Run,
    Sample,
)
from workers_app.references.adjudicated import sync_adjudicated
from workers_app.references.options import CODED
from workers_app.review.services import codes_problem
from workers_app.runs.current import forget_cached_runs
from workers_app.runs.definitions import checked_run, create_runs, missing_runs, run_set_problems
from workers_app.runs.files import annotations_dir
from workers_app.runs.services import switch_run

from .archive import (
    OPTIONAL_MEMBERS,
    REFERENCE_MEMBERS,
    RUNS_MEMBER,
    ArchiveError,
    read_members,
    verify_archive,
    workbook_place,
)
from .snapshot import (
    ADDED_LATER,
    MALFORMED_FIELDS,
    OUTCOME_FIELDS,
    REFERENCE_FIELDS,
    REFERENCE_LABEL_FIELDS,
    REVIEW_FIELDS,
)

BATCH = 2000
MAX_PROBLEMS_SHOWN = 20


def _is_text(value: object) -> bool:
    return isinstance(value, str)


def _is_number(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_user_name(value: object) -> bool:
    return value is None or (isinstance(value, str) and len(value) <= 150)


def _is_corpus_key(value: object) -> bool:
    return isinstance(value, list) and len(value) == 2 and all(isinstance(part, str) for part in value)


# The natural keys a line names other rows by: (what to expect, the check).
KEYED = {"run": ("a run name", _is_text), "sample": ("text", _is_text), "annotator": ("a whole number", _is_number),
         "domain": ("text", _is_text)}
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
    "references": (ReferenceSet, REFERENCE_FIELDS, {}),
    "reference_labels": (ReferenceLabel, REFERENCE_LABEL_FIELDS, {"reference": ("a reference set name", _is_text),
                                                                  "sample": ("text", _is_text),
                                                                  "domain": ("text", _is_text)}),
}
# Members an archive may lack: the review queue (before it existed), the reference sets (before version 3).
ABSENT_BEFORE = (*OPTIONAL_MEMBERS, *REFERENCE_MEMBERS)


@dataclass
class RestorePlan:
    archive: str
    only_run: str | None = None
    runs: list[str] = field(default_factory=list)
    corpora: int = 0
    samples: int = 0
    outcomes: int = 0
    malformed: int = 0
    review: int = 0
    workbooks: list[str] = field(default_factory=list)
    current: str | None = None
    references: list[str] = field(default_factory=list)
    reference_labels: int = 0

    def summary(self) -> str:
        scope = f" (run {self.only_run} only)" if self.only_run else ""
        made = f" ({', '.join(self.runs)})" if self.runs else ""
        current = f"; run {self.current} becomes the current run" if self.current else ""
        sets = f" ({', '.join(self.references)})" if self.references else ""
        return (f"{self.archive}{scope}: {len(self.runs)} run(s){made}, {self.corpora} corpora, {self.samples} "
                f"samples, {self.outcomes} outcomes, {self.malformed} malformed attempts, {self.review} review "
                f"item(s), {len(self.references)} reference set(s){sets} with {self.reference_labels} label(s) and "
                f"{len(self.workbooks)} workbook(s) to restore{current}")


class RestoreConflict(ValueError):
    """The archive disagrees with the store (a sample id with other text, an unknown annotator or domain)."""


@dataclass(frozen=True)
class _Workbook:
    member: str
    run: str
    file_name: str
    data: bytes

    @property
    def target(self) -> Path:
        return annotations_dir(Run(name=self.run)) / self.file_name

    @property
    def shown(self) -> str:
        """Where it goes, under DATA_DIR (a version 1 archive's workbooks go to the default run's folder)."""
        return str(self.target.relative_to(settings.DATA_DIR))


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


def _parsed(line: str) -> dict:
    try:
        record = json.loads(line, parse_constant=_no_constant)
    except RecursionError:
        raise _BadLine("not JSON (nested too deeply)") from None
    except ValueError as exc:
        raise _BadLine(f"not JSON ({exc})") from None
    if not isinstance(record, dict):
        raise _BadLine("expected a JSON object")
    return record


def _record(line: str, kind: str, version: int) -> dict:
    """One line as the values its row will take, checked by the model's field rules; _BadLine says why not."""
    model, fields, keys = RECORDS[kind]
    record = _parsed(line)
    for name in ADDED_LATER:
        if name in fields and name not in record:  # a line of an older archive
            record[name] = model._meta.get_field(name).get_default()
    if version == 1 and "run" in keys:  # made before runs: all of it was the default run's
        record["run"] = DEFAULT_RUN
    missing = [name for name in (*keys, *fields) if name not in record]
    if missing:
        raise _BadLine(f"missing field '{missing[0]}'")
    for name, (expected, fits) in keys.items():
        if not fits(record[name]):
            raise _BadLine(f"{name}: expected {expected}")
    values, problems = {}, []
    for name in fields:
        try:
            values[name] = stored_value(model._meta.get_field(name), record[name])
        except ValidationError as exc:
            problems.append(f"{name}: {' '.join(exc.messages)}")
    if problems:
        raise _BadLine("; ".join(problems))
    return {**{name: record[name] for name in keys}, **values}


def _lines(kind: str, data: bytes, problems: list[str]) -> list[str]:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        problems.append(f"{_member(kind)}: not UTF-8 text (byte {exc.start})")
        return []
    # split, not splitlines: a JSON string may hold U+2028 or other characters splitlines breaks at.
    lines = text.split("\n")
    if lines[-1] == "":
        lines.pop()
    return lines


def _records(kind: str, data: bytes, version: int, problems: list[str]) -> list[dict]:
    records = []
    for number, line in enumerate(_lines(kind, data, problems), start=1):
        try:
            records.append(_record(line, kind, version))
        except _BadLine as exc:
            problems.append(f"{_member(kind)} line {number}: {exc}")
    return records


def _run_line(number: int) -> Callable[[str], str]:
    return lambda name: f"{RUNS_MEMBER} line {number}" + (f": {name}" if name else "")


def _run_records(data: bytes, problems: list[str]) -> list[dict]:
    runs = []
    for number, line in enumerate(_lines("runs", data, problems), start=1):
        try:
            record = _parsed(line)
        except _BadLine as exc:
            problems.append(f"{RUNS_MEMBER} line {number}: {exc}")
            continue
        values, found = checked_run(record, _run_line(number))
        problems += found
        runs.append(values)
    return runs


def _default_run() -> dict:
    """The definition of the default run as a restore makes it when nothing names it (a version 1 archive)."""
    return {"name": DEFAULT_RUN, "description": "Made by the restore of an archive from before named runs.",
            "is_current": True, "all_samples": True, "selection": {}, "annotators": [], "domains": [], "pinned": {},
            "code_version": "", "budget": None, "created_by": "restore", "created_at": timezone.now(),
            "started_at": None, "samples": []}


def _data(members: dict[str, bytes], version: int) -> dict[str, list[dict]]:
    problems: list[str] = []
    data = {kind: _records(kind, members.get(_member(kind), b"") if _member(kind) in ABSENT_BEFORE
                           else members[_member(kind)], version, problems) for kind in RECORDS}
    data["runs"] = _run_records(members[RUNS_MEMBER], problems) if version > 1 else [_default_run()]
    if problems:
        raise ArchiveError(f"the archive's data cannot be restored; nothing was restored:\n{_listed(problems)}")
    return data


def _workbooks(members: dict[str, bytes]) -> list[_Workbook]:
    return [_Workbook(name, *place, data) for name, data in sorted(members.items())
            if (place := workbook_place(name)) is not None]


def _outcome_key(record: dict) -> tuple:
    return record["run"], record["sample"], record["annotator"], record["domain"]


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


def _run_problems(data: dict[str, list[dict]], numbers: set[int], slugs: set[str]) -> list[str]:
    return run_set_problems(data["runs"], lambda index, name: _run_line(index + 1)(name),
                            samples={s["external_id"] for s in data["samples"]}, sample_source=_member("samples"),
                            numbers=numbers, slugs=slugs,
                            references=set(ReferenceSet.objects.values_list("name", flat=True))
                            | {r["name"] for r in data["references"]})


def _line_problems(data: dict[str, list[dict]], samples: set[str], runs: set[str], numbers: set[int],
                   slugs: set[str]) -> list[str]:
    problems = []
    for kind in ("outcomes", "malformed"):
        for number, record in enumerate(data[kind], start=1):
            where = f"{_member(kind)} line {number}"
            if record["run"] not in runs:
                problems.append(f"{where}: run {record['run']!r:.50} is neither in {RUNS_MEMBER} nor in the store")
            if record["sample"] not in samples:
                problems.append(f"{where}: sample {record['sample']!r:.80} is neither in {_member('samples')} nor "
                                "in the store")
            if record["annotator"] not in numbers or record["domain"] not in slugs:
                problems.append(f"{where}: annotator {record['annotator']} or domain {record['domain']!r:.80} is "
                                "not in the catalogue; import the archive's state.json first")
    return problems


def _workbook_problems(workbooks: list[_Workbook], runs: set[str]) -> list[str]:
    """Every workbook must belong to a run the archive or the store has, and to a worker of the catalogue."""
    workers = {f"{key}.xlsx" for key in worker_keys()}
    problems = [f"{w.member}: run {w.run!r} is neither in {RUNS_MEMBER} nor in the store" for w in workbooks
                if w.run not in runs]
    problems += [f"{w.member}: a workbook of a worker the catalogue does not have; import the archive's state.json "
                 "first" for w in workbooks if w.file_name not in workers]
    return problems


def _reference_problems(data: dict[str, list[dict]], workbooks: list[_Workbook]) -> list[str]:
    """Every line that names a run, corpus, sample, annotator or domain neither the archive nor the store has."""
    corpora = set(Corpus.objects.values_list("sha256", "selection")) | {(c["sha256"], c["selection"])
                                                                        for c in data["corpora"]}
    samples = set(Sample.objects.values_list("external_id", flat=True)) | {s["external_id"] for s in data["samples"]}
    runs = set(Run.objects.values_list("name", flat=True)) | {r["name"] for r in data["runs"]}
    numbers = set(Annotator.objects.values_list("number", flat=True))
    slugs = set(Domain.objects.values_list("slug", flat=True))
    problems = _run_problems(data, numbers, slugs)
    problems += _repeated_lines("samples", data["samples"], lambda s: s["external_id"])
    problems += _repeated_lines("outcomes", data["outcomes"], _outcome_key)
    problems += _repeated_lines("review", data["review"], lambda r: r["sample"])
    problems += [f"{_member('review')} line {n}: sample {r['sample']!r:.80} is neither in {_member('samples')} nor "
                 "in the store" for n, r in enumerate(data["review"], start=1) if r["sample"] not in samples]
    problems += [f"{_member('samples')} line {n}: corpus {s['corpus']} is neither in {_member('corpora')} nor in "
                 "the store" for n, s in enumerate(data["samples"], start=1) if tuple(s["corpus"]) not in corpora]
    problems += _line_problems(data, samples, runs, numbers, slugs)
    problems += _reference_set_problems(data, samples)
    return problems + _workbook_problems(workbooks, runs)


def _value_map_problem(value_map: object, domains: dict[str, Domain]) -> str:
    if not isinstance(value_map, dict) or not all(isinstance(m, dict) for m in value_map.values()):
        return "value_map: expected an object of objects"
    for slug, mapped in value_map.items():
        if slug not in domains or domains[slug].kind not in CODED:
            return f"value_map: {slug!r:.40} is not a coded domain of the catalogue"
        for value, code in mapped.items():
            if not isinstance(code, str) or codes_problem(domains[slug], [code]):
                return f"value_map: {slug}: {value!r:.40} maps to {code!r:.40}, not a code of {slug}"
    return ""


def _reference_set_problems(data: dict[str, list[dict]], samples: set[str]) -> list[str]:
    """The sets: names not reserved, given once, agreeing with a set of the same name in the store (same file read
    the same way); their labels: of a set the archive or the store has, a sample and a coded domain there are,
    codes of that domain, each (set, sample, domain, rater) once."""
    domains = {d.slug: d for d in Domain.objects.all()}
    stored = {r["name"]: r for r in ReferenceSet.objects.values("name", "sha256", "selection", "system")}
    where = _member("references")
    problems = _repeated_lines("references", data["references"], lambda r: r["name"])
    for number, record in enumerate(data["references"], start=1):
        known = stored.get(record["name"])
        if record["name"] == ADJUDICATED_SET:
            problems.append(f"{where} line {number}: {ADJUDICATED_SET!r} is the review queue's set, kept by the "
                            "console")
        elif known is not None and (known["sha256"], known["selection"]) != (record["sha256"], record["selection"]):
            problems.append(f"{where} line {number}: the store has a reference set {record['name']!r} from another "
                            "file or read another way")
        problem = _value_map_problem(record["value_map"], domains)
        if problem:
            problems.append(f"{where} line {number}: {problem}")
    names = {r["name"] for r in data["references"]} | {n for n, r in stored.items() if not r["system"]}
    where = _member("reference_labels")
    problems += _repeated_lines("reference_labels", data["reference_labels"],
                                lambda r: (r["reference"], r["sample"], r["domain"], r["rater"]))
    for number, record in enumerate(data["reference_labels"], start=1):
        domain = domains.get(record["domain"])
        if record["reference"] not in names:
            problems.append(f"{where} line {number}: reference set {record['reference']!r:.50} is neither in "
                            f"{_member('references')} nor in the store")
        if record["sample"] not in samples:
            problems.append(f"{where} line {number}: sample {record['sample']!r:.80} is neither in "
                            f"{_member('samples')} nor in the store")
        if domain is None or domain.kind not in CODED:
            problems.append(f"{where} line {number}: domain {record['domain']!r:.40} is not a coded domain of the "
                            "catalogue")
        elif problem := codes_problem(domain, record["labels"]):
            problems.append(f"{where} line {number}: labels: {problem}")
    return problems


def _existing_outcome_keys() -> set[tuple[str, str, int, str]]:
    return set(Outcome.objects.values_list("run__name", "sample__external_id", "annotator__number", "domain__slug"))


def _existing_malformed_keys() -> set[tuple]:
    return set(MalformedAttempt.objects.values_list("run__name", "sample__external_id", "annotator__number",
                                                    "domain__slug", "attempt", "created_at"))


def _workbook_differs(workbook: _Workbook) -> bool:
    return not workbook.target.exists() or workbook.target.read_bytes() != workbook.data


def _new_current(runs: list[dict]) -> str | None:
    """The run that becomes current, or None when the store's current run stays (see the module's doc)."""
    current = Run.objects.filter(is_current=True).first()
    if current is not None and (current.name != DEFAULT_RUN or current.outcomes.exists()):
        return None
    named = next((run["name"] for run in runs if run["is_current"]), None)
    wanted = named or (DEFAULT_RUN if current is None else None)
    return None if current is not None and wanted == current.name else wanted


def _plan(archive: str, manifest: dict, data: dict[str, list[dict]], workbooks: list[_Workbook]) -> RestorePlan:
    problems = _reference_problems(data, workbooks)
    if problems:
        raise RestoreConflict(f"the archive disagrees with the store; nothing was restored:\n{_listed(problems)}")
    corpora = set(Corpus.objects.values_list("sha256", "selection"))
    samples = dict(Sample.objects.values_list("external_id", "text"))
    for record in data["samples"]:
        known = samples.get(record["external_id"])
        if known is not None and known != record["text"]:
            raise RestoreConflict(f"sample {record['external_id']} exists with other text; nothing was restored")
    current = _new_current(data["runs"])
    if current == DEFAULT_RUN and DEFAULT_RUN not in {run["name"] for run in data["runs"]}:
        data["runs"].append(_default_run())
    outcomes = _existing_outcome_keys()
    malformed = _existing_malformed_keys()
    reviewed = _existing_review_samples()
    missing_sets = {r["name"] for r in _missing_references(data)}
    return RestorePlan(
        archive=archive, only_run=manifest.get("run"),
        runs=[run["name"] for run in missing_runs(data["runs"])],
        corpora=sum((c["sha256"], c["selection"]) not in corpora for c in data["corpora"]),
        samples=sum(s["external_id"] not in samples for s in data["samples"]),
        outcomes=sum(_outcome_key(o) not in outcomes for o in data["outcomes"]),
        malformed=sum(_malformed_key(m) not in malformed for m in data["malformed"]),
        review=sum(r["sample"] not in reviewed for r in data["review"]),
        workbooks=[w.shown for w in workbooks if _workbook_differs(w)],
        current=current,
        references=sorted(missing_sets),
        reference_labels=sum(label["reference"] in missing_sets for label in data["reference_labels"]),
    )


def _missing_references(data: dict[str, list[dict]]) -> list[dict]:
    """The archive's sets the store lacks; a set the store has keeps its labels as they are."""
    known = set(ReferenceSet.objects.values_list("name", flat=True))
    return [record for record in data["references"] if record["name"] not in known]


def _restore_references(data: dict[str, list[dict]]) -> None:
    missing = _missing_references(data)
    made = {r["name"]: ReferenceSet.objects.create(**{name: r[name] for name in REFERENCE_FIELDS}) for r in missing}
    samples = dict(Sample.objects.values_list("external_id", "pk"))
    domains = dict(Domain.objects.values_list("slug", "pk"))
    ReferenceLabel.objects.bulk_create(
        (ReferenceLabel(reference_set=made[r["reference"]], sample_id=samples[r["sample"]],
                        domain_id=domains[r["domain"]], **{name: r[name] for name in REFERENCE_LABEL_FIELDS})
         for r in data["reference_labels"] if r["reference"] in made), batch_size=BATCH)


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
    runs = dict(Run.objects.values_list("name", "pk"))
    samples = dict(Sample.objects.values_list("external_id", "pk"))
    annotators = dict(Annotator.objects.values_list("number", "pk"))
    domains = dict(Domain.objects.values_list("slug", "pk"))
    return [model(run_id=runs[r["run"]], sample_id=samples[r["sample"]], annotator_id=annotators[r["annotator"]],
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


def _write_workbook(workbook: _Workbook) -> None:
    workbook.target.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(workbook.target, lambda temp: temp.write_bytes(workbook.data))


def _apply(prepared: _Prepared, actor: Actor) -> None:
    data = prepared.data
    with transaction.atomic():
        _restore_samples(data)
        _restore_references(data)  # before the runs: a run's gold checks name their set
        create_runs(data["runs"])
        Outcome.objects.bulk_create(_keyed_rows("outcomes", data["outcomes"], _outcome_key,
                                                _existing_outcome_keys()), batch_size=BATCH)
        MalformedAttempt.objects.bulk_create(_keyed_rows("malformed", data["malformed"], _malformed_key,
                                                         _existing_malformed_keys()), batch_size=BATCH)
        ReviewItem.objects.bulk_create(_review_rows(data["review"]), batch_size=BATCH)
        sync_adjudicated()  # the review queue's set follows the restored items
    for workbook in prepared.workbooks:
        if _workbook_differs(workbook):
            _write_workbook(workbook)
    forget_cached_runs()
    if prepared.plan.current:
        switch_run(Run.objects.get(name=prepared.plan.current), actor=actor)
    sync_checkpoints()


@dataclass
class _Prepared:
    data: dict[str, list[dict]]
    workbooks: list[_Workbook]
    plan: RestorePlan


def _prepared(path: Path) -> _Prepared:
    verification = verify_archive(path)
    if not verification.ok:
        raise ArchiveError(f"{path.name} failed verification; nothing was restored:\n{_listed(verification.problems)}")
    manifest = verification.manifest
    members = read_members(path, manifest["members"])
    data, workbooks = _data(members, manifest["version"]), _workbooks(members)
    return _Prepared(data, workbooks, _plan(path.name, manifest, data, workbooks))


def restore_archive(path: str | Path, *, actor: Actor, dry_run: bool = False) -> RestorePlan:
    """Verify and check everything, then bring back what the store and the workbooks lack. A refused restore (not
    a dry run) leaves a failed audit row saying why."""
    path = Path(path)
    if dry_run:
        return _prepared(path).plan
    with audited(Action.RESTORE_ARCHIVE, actor=actor, target=path.name, atomic=False) as entry:
        prepared = _prepared(path)
        _apply(prepared, actor)
        entry.detail = {"summary": prepared.plan.summary()}
    checkpoint_wal()
    return prepared.plan
