"""import_reference and delete_reference: a reference set from a csv / xlsx / jsonl file, read by the corpus reader.

Every row is checked before anything is written, with no transaction open (a large file on SQLite must not stop
the workers' writes): each sample id must name a stored sample (read exactly as the corpus import read it), each
label must be a code of its domain after the value map, each (sample, domain, rater) must appear once. Any problem,
and nothing is written; each is named by file, sheet, row and field. The same file read the same way under the same
name again is a no-op that says so.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from django.core.exceptions import ValidationError
from django.db import IntegrityError

from annotation_site.files import file_sha256
from audit.actions import Action
from audit.actors import Actor, actor_name
from audit.services import audited
from workers_app.importing.checks import checked_id, unsafe_character
from workers_app.importing.readers import file_kind
from workers_app.importing.rows import FileRejected, Problem, Row
from workers_app.importing.service import ImportRejected, check_file
from workers_app.models import ADJUDICATED_SET, Domain, ReferenceLabel, ReferenceSet, Sample
from workers_app.models.reference import MAX_RATER_CHARS

from .options import (
    DOMAIN_FIELD,
    ID_FIELD,
    LABEL_FIELD,
    RATER_FIELD,
    Layout,
    ReferenceRefused,
    checked_options,
    codes_of,
    label_text,
)

LOOKUP_BATCH = 500
WRITE_BATCH = 2000
PROVENANCE_FIELDS = ("kind", "description", "source", "licence", "citation", "raters")


@dataclass(frozen=True)
class Provenance:
    """Where a set's labels come from, as staff state it."""

    kind: str = ReferenceSet.Kind.EXPERT
    description: str = ""
    source: str = ""
    licence: str = ""
    citation: str = ""
    raters: int | None = None


@dataclass
class ReferenceReport:
    reference_set: ReferenceSet
    labels: int = 0
    per_domain: dict[str, int] = field(default_factory=dict)
    raters: int = 0  # distinct raters named (0: one label per item, no rater column)
    empty: int = 0  # label cells left empty: no label of that domain for that row
    already_imported: bool = False

    def summary(self) -> str:
        found = self.reference_set
        if self.already_imported:
            return (f"reference set {found.name} was imported from {found.file_name} on "
                    f"{found.created_at:%Y-%m-%d %H:%M} the same way; nothing changed.")
        domains = ", ".join(f"{slug} {count}" for slug, count in self.per_domain.items())
        raters = f" from {self.raters} raters" if self.raters else ""
        empty = f"; {self.empty} empty label cell(s) skipped" if self.empty else ""
        return f"reference set {found.name}: {self.labels} label(s){raters} ({domains}){empty}."


@dataclass(frozen=True)
class _Pending:
    external_id: str
    domain: int
    rater: str
    codes: list[str]
    row: int
    sheet: str
    unit: str


class _ReferenceCheck:
    """Checks rows as they stream in; the sample ids are looked up a batch at a time."""

    def __init__(self, file: str, layout: Layout, domains: dict[str, Domain], value_map: dict[str, dict[str, str]]):
        self.file = file
        self.layout = layout
        self.domains = domains
        self.value_map = value_map
        self.problems: list[Problem] = []
        self.labels: list[_Pending] = []
        self.empty = 0
        self.samples: dict[str, int] = {}
        self._first_seen: dict[tuple[str, int, str], str] = {}
        self._waiting: set[str] = set()

    def add(self, row: Row) -> None:
        external_id, problem = checked_id(row.values[ID_FIELD])
        problems = [row.problem(self.file, ID_FIELD, problem)] if problem else []
        rater, problem = self._rater(row)
        if problem:
            problems.append(row.problem(self.file, RATER_FIELD, problem))
        found = []
        for slug, field_name, value in self._cells(row):
            codes, problem = self._codes(slug, value)
            if problem:
                problems.append(row.problem(self.file, field_name, problem))
            elif codes is None:
                self.empty += 1
            else:
                found.append((slug, codes))
        if problems:
            self.problems += problems
            return
        for slug, codes in found:
            duplicate = self._duplicate(row, external_id, self.domains[slug], rater)
            if duplicate:
                self.problems.append(duplicate)
                continue
            self.labels.append(_Pending(external_id, self.domains[slug].pk, rater, codes, row.row, row.sheet,
                                        row.unit))
        self._waiting.add(external_id)
        if len(self._waiting) >= LOOKUP_BATCH:
            self.settle()

    def _rater(self, row: Row) -> tuple[str, str]:
        if not self.layout.rater_column:
            return "", ""
        rater, problem = label_text(row.values[RATER_FIELD])
        if problem:
            return "", problem.replace("a label", "a rater")
        if not rater:
            return "", "empty rater: every row names its rater when --rater-column is given"
        if len(rater) > MAX_RATER_CHARS:
            return "", f"the rater is {len(rater):,} characters; at most {MAX_RATER_CHARS}"
        return rater, unsafe_character(rater) or ""

    def _cells(self, row: Row) -> Iterator[tuple[str, str, object]]:
        """(domain slug, field name for messages, the label cell) of each label the row holds."""
        if not self.layout.long:
            for slug in self.layout.labels:
                yield slug, self.layout.labels[slug], row.values[f"{LABEL_FIELD}:{slug}"]
            return
        slug, problem = label_text(row.values[DOMAIN_FIELD])
        if problem or slug not in self.domains:
            known = ", ".join(self.domains)
            self.problems.append(row.problem(self.file, DOMAIN_FIELD, problem.replace("a label", "a domain") or
                                             f"no domain {slug[:40]!r}; the domains are {known}"))
            return
        yield slug, LABEL_FIELD, row.values[LABEL_FIELD]

    def _codes(self, slug: str, value: object) -> tuple[list[str] | None, str]:
        text, problem = label_text(value)
        if problem:
            return None, problem
        if not text:
            return None, ""
        domain = self.domains[slug]
        if domain.kind not in (Domain.Kind.ORDINAL, Domain.Kind.NOMINAL, Domain.Kind.CODE_SET):
            return None, f"{slug} holds free text, which has no codes to compare with"
        codes, problem = codes_of(text, domain, self.value_map.get(slug, {}))
        return (None, problem) if problem else (codes, "")

    def _duplicate(self, row: Row, external_id: str, domain: Domain, rater: str) -> Problem | None:
        key = (external_id, domain.pk, rater)
        earlier = self._first_seen.get(key)
        if earlier is None:
            self._first_seen[key] = row.where()
            return None
        who = f", rater {rater!r}" if rater else ""
        hint = "" if self.layout.rater_column else \
            " (several raters per item? name the column that tells them apart with --rater-column)"
        return row.problem(self.file, ID_FIELD, f"sample {external_id!r}, domain {domain.slug}{who} is labelled "
                                                f"twice (first at {earlier}){hint}")

    def settle(self) -> None:
        """Look up the waiting sample ids; an id no sample has is named at each row that uses it."""
        if not self._waiting:
            return
        self.samples.update(Sample.objects.filter(external_id__in=self._waiting).values_list("external_id", "pk"))
        self._waiting = set()

    def unknown_samples(self) -> list[Problem]:
        return [Problem(self.file, f"no sample {label.external_id!r}: import the posts as a corpus first (the ids "
                                   "must be those the corpus import read)", sheet=label.sheet, row=label.row,
                        field=ID_FIELD, unit=label.unit)
                for label in self.labels if label.external_id not in self.samples]


def _provenance_problems(name: str, provenance: Provenance) -> list[str]:
    if name == ADJUDICATED_SET:
        return [f"--name {name}: reserved for the review queue's adjudications, which the console keeps itself"]
    candidate = ReferenceSet(name=name, created_by="-", **{f: getattr(provenance, f) for f in PROVENANCE_FIELDS})
    try:
        candidate.full_clean(validate_unique=False, validate_constraints=False)
    except ValidationError as exc:
        return [f"--{field_name}: {message}" for field_name, messages in exc.message_dict.items()
                for message in messages]
    return []


def _selection(layout: Layout, value_map: dict[str, dict[str, str]]) -> dict:
    return {"layout": layout.as_record(), "value_map": value_map}


def _write(check: _ReferenceCheck, reference_set: ReferenceSet) -> None:
    reference_set.save()
    rows = (ReferenceLabel(reference_set=reference_set, sample_id=check.samples[p.external_id], domain_id=p.domain,
                           rater=p.rater, labels=p.codes, source_row=p.row) for p in check.labels)
    ReferenceLabel.objects.bulk_create(rows, batch_size=WRITE_BATCH)


def import_reference(
    path: str | Path,
    *,
    name: str,
    layout: Layout,
    actor: Actor,
    value_map: dict[str, dict[str, str]] | None = None,
    provenance: Provenance | None = None,
    display_name: str | None = None,
    progress: Callable[[int], None] | None = None,
    client_address: str | None = None,
) -> ReferenceReport:
    """Import every label of the file as the reference set ``name``, or none if anything is wrong."""
    path, value_map, provenance = Path(path), value_map or {}, provenance or Provenance()
    shown = display_name or path.name
    selection = _selection(layout, value_map)
    parameters = {"file": shown, **selection, **{f: getattr(provenance, f) for f in PROVENANCE_FIELDS}}
    with audited(Action.IMPORT_REFERENCE, actor=actor, target=name, parameters=parameters,
                 client_address=client_address, atomic=False) as entry:
        domains, problems = checked_options(layout, value_map)
        problems += _provenance_problems(name, provenance)
        if problems:
            raise ReferenceRefused(problems)
        try:
            kind = file_kind(path, shown)
        except FileRejected as exc:
            raise ReferenceRefused([exc.problem]) from None
        digest = file_sha256(path)
        existing = ReferenceSet.objects.filter(name=name).first()
        if existing is not None:
            if (existing.sha256, existing.selection) == (digest, selection):
                entry.detail = {"already_imported": existing.pk}
                return ReferenceReport(existing, already_imported=True)
            raise ReferenceRefused([(f"a reference set named {name!r} exists already (from {existing.file_name}, "
                                    "read another way or another file): delete it first (manage.py reference "
                                    f"delete {name} --yes) or choose another name")])
        check = _ReferenceCheck(shown, layout, domains, value_map)
        try:
            check_file(path, kind, shown, list(layout.sheets) or None, layout.columns(), check, progress)
        except ImportRejected as exc:
            raise ReferenceRefused(exc.problems) from None
        problems = check.problems + check.unknown_samples()
        if problems:
            raise ReferenceRefused(sorted(problems, key=lambda p: (p.sheet, p.row or 0)))
        if not check.labels:
            raise ReferenceRefused([Problem(shown, "no labels: every label cell is empty")])
        reference_set = ReferenceSet(name=name, value_map=value_map, file_name=shown[:255], sha256=digest,
                                     selection=selection, created_by=actor_name(actor),
                                     **{f: getattr(provenance, f) for f in PROVENANCE_FIELDS})
        per_domain = Counter(label.domain for label in check.labels)
        slugs = {domain.pk: slug for slug, domain in domains.items()}
        report = ReferenceReport(reference_set, labels=len(check.labels), empty=check.empty,
                                 per_domain={slugs[pk]: count for pk, count in per_domain.items()},
                                 raters=len({label.rater for label in check.labels} - {""}))
        entry.detail = {"labels": report.labels, "per_domain": report.per_domain, "raters": report.raters,
                        "empty": report.empty}
        try:
            with entry.commit():
                _write(check, reference_set)
                entry.detail["reference_set"] = reference_set.pk
        except IntegrityError:
            raise ReferenceRefused([f"another import made a reference set named {name!r} meanwhile"]) from None
    return report


def delete_reference(reference_set: ReferenceSet, *, actor: Actor, client_address: str | None = None) -> int:
    """Delete an imported set and its labels (runs and outcomes are untouched); returns how many labels went."""
    with audited(Action.DELETE_REFERENCE, actor=actor, target=reference_set.name,
                 client_address=client_address) as entry:
        if reference_set.system:
            raise ReferenceRefused([(f"reference set {reference_set.name} is kept by the console itself (the review "
                                    "queue's adjudications): it cannot be deleted")])
        in_use = list(reference_set.gold_runs.order_by("name").values_list("name", flat=True))
        if in_use:
            raise ReferenceRefused([(f"reference set {reference_set.name} is the gold set of run(s) "
                                     f"{', '.join(in_use)}: delete those runs first")])
        labels = reference_set.labels.count()
        reference_set.delete()
        entry.detail = {"labels": labels, "file": reference_set.file_name, "sha256": reference_set.sha256}
    return labels
