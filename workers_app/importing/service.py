"""import_corpus: check a whole file with no transaction open, then write all of it (or none) in one short one.

On SQLite an open write transaction stops every worker's writes, so reading and checking a large file, which takes
long, happens before the transaction; the rows that pass wait in a spool file and are written in batches at the end.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from django.conf import settings
from django.db import IntegrityError

from annotation_site.db import checkpoint_wal
from annotation_site.files import file_sha256
from audit.actions import Action
from audit.actors import Actor, actor_name
from audit.services import AuditEntry, audited
from workers_app.models import Corpus, Sample

from .checks import clean_row, cut_cell
from .readers import file_kind, open_rows
from .rows import Columns, FileRejected, Problem, Row
from .spool import NewSample, RowSpool, row_spool

BATCH = 1000
LOOKUP_BATCH = 500
SHOWN_PROBLEMS = 50


class ImportRejected(Exception):
    """The file has problems; nothing was imported."""

    def __init__(self, problems: list[Problem]):
        self.problems = problems
        shown = "\n".join(f"  - {p}" for p in problems[:SHOWN_PROBLEMS])
        more = f"\n  … and {len(problems) - SHOWN_PROBLEMS} more" if len(problems) > SHOWN_PROBLEMS else ""
        super().__init__(f"{len(problems)} problem(s); nothing was imported:\n{shown}{more}")


@dataclass
class ImportReport:
    corpus: Corpus | None
    imported: int = 0
    already_present: int = 0
    skipped: list[Problem] = field(default_factory=list)
    warnings: list[Problem] = field(default_factory=list)
    already_imported: bool = False

    def summary(self) -> str:
        if self.already_imported:
            return f"{self.corpus.file_name} was already imported on {self.corpus.imported_at:%Y-%m-%d %H:%M} " \
                   f"(corpus #{self.corpus.pk}); nothing changed."
        parts = [f"imported {self.imported} sample(s)"]
        if self.already_present:
            parts.append(f"{self.already_present} already present with the same text")
        if self.skipped:
            parts.append(f"skipped {len(self.skipped)} invalid row(s)")
        if self.warnings:
            parts.append(f"{len(self.warnings)} text(s) probably cut at the xlsx cell limit, imported as they are")
        return "; ".join(parts) + "."


class _FileCheck:
    """Checks rows as they stream in. The good new ones go to the spool; the ids already stored are looked up a
    batch at a time, so neither the rows nor the lookups pile up in memory."""

    def __init__(self, file: str, spool: RowSpool, *, allow_cut_cells: bool):
        self.file = file
        self.spool = spool
        self.allow_cut_cells = allow_cut_cells
        self.present = 0
        self.rows = 0
        self.sheets: set[str] = set()
        self.problems: list[Problem] = []
        self.warnings: list[Problem] = []
        self._first_seen: dict[str, str] = {}
        self._waiting: list[tuple[Row, str, str]] = []

    def add(self, row: Row) -> None:
        self.rows += 1
        if row.sheet:
            self.sheets.add(row.sheet)
        external_id, text, problems = clean_row(row, self.file)
        problems += self._duplicate(row, external_id)
        cut = cut_cell(row, text, self.file, allowed=self.allow_cut_cells)
        if cut is not None and not self.allow_cut_cells:
            problems.append(cut)
        if problems:
            self.problems.extend(problems)
            return
        if cut is not None:
            self.warnings.append(cut)
        self._waiting.append((row, external_id, text))
        if len(self._waiting) >= LOOKUP_BATCH:
            self.settle()

    def _duplicate(self, row: Row, external_id: str) -> list[Problem]:
        if not external_id:
            return []
        earlier = self._first_seen.get(external_id)
        if earlier is None:
            self._first_seen[external_id] = row.where()
            return []
        return [row.problem(self.file, "id", f"duplicate id '{external_id}' (first at {earlier})")]

    def settle(self) -> None:
        """Sorts the waiting rows into new (spooled), already stored with the same text, and conflicting."""
        stored = {external_id: (text, corpus_id) for external_id, text, corpus_id in Sample.objects.filter(
            external_id__in=[w[1] for w in self._waiting]).values_list("external_id", "text", "corpus_id")}
        for row, external_id, text in self._waiting:
            if external_id not in stored:
                self.spool.add(NewSample(row.sheet, row.row, external_id, text))
            elif stored[external_id][0] == text:
                self.present += 1
            else:
                self.problems.append(row.problem(self.file, "id", f"id '{external_id}' already exists (corpus "
                                                 f"#{stored[external_id][1]}) with different text"))
        self._waiting = []


def _selection(sheets: list[str] | None, columns: Columns) -> str:
    return "|".join([",".join(sheets or ["*"]), *(column.wanted or "" for column in columns.fields)])


def _write(spool: RowSpool, corpus: Corpus) -> None:
    corpus.save()
    for batch in spool.batches(BATCH):
        Sample.objects.bulk_create(Sample(external_id=s.external_id, text=s.text, corpus=corpus, source_sheet=s.sheet,
                                          source_row=s.row) for s in batch)


class RowCheck(Protocol):
    """What reads a file's rows for an import: each row as it streams in, then whatever waited for a batch."""

    def add(self, row: Row) -> None: ...

    def settle(self) -> None: ...


def check_file(path: Path, kind: str, name: str, sheets: list[str] | None, columns: Columns, check: RowCheck,
               progress: Callable[[int], None] | None = None) -> None:
    """Hand every row of the file to ``check``; a file that cannot be read, or has more than IMPORT_MAX_ROWS data
    rows, is refused as a whole (ImportRejected)."""
    try:
        with closing(open_rows(path, kind, name, sheets, columns)) as rows:  # closes the file at once on a refusal
            for count, row in enumerate(rows, start=1):
                if count > settings.IMPORT_MAX_ROWS:
                    raise FileRejected(row.problem(name, "", f"more than {settings.IMPORT_MAX_ROWS:,} data rows "
                                                   "(IMPORT_MAX_ROWS): split the file"))
                check.add(row)
                if progress:
                    progress(1)
    except FileRejected as exc:
        raise ImportRejected([exc.problem]) from None
    check.settle()


@dataclass
class CheckReport:
    """What importing the file would do; nothing was written."""

    rows: int = 0
    new: int = 0
    already_present: int = 0
    problems: list[Problem] = field(default_factory=list)
    warnings: list[Problem] = field(default_factory=list)
    already_imported: Corpus | None = None


def check_corpus(path: str | Path, *, sheets: list[str] | None = None, id_column: str | None = None,
                 text_column: str | None = None, allow_cut_cells: bool = False, display_name: str | None = None,
                 progress: Callable[[int], None] | None = None) -> CheckReport:
    """Every row checked as ``import_corpus`` checks it, and nothing written: the problems by row, how many rows
    are new and how many are stored already."""
    path = Path(path)
    columns = Columns.corpus(id_column, text_column)
    name = display_name or path.name
    try:
        kind = file_kind(path, name)
    except FileRejected as exc:
        return CheckReport(problems=[exc.problem])
    previous = Corpus.objects.filter(sha256=file_sha256(path), selection=_selection(sheets, columns)).first()
    if previous is not None:
        return CheckReport(already_imported=previous)
    with row_spool() as spool:
        check = _FileCheck(name, spool, allow_cut_cells=allow_cut_cells)
        try:
            check_file(path, kind, name, sheets, columns, check, progress)
        except ImportRejected as exc:
            check.problems.extend(exc.problems)
        return CheckReport(rows=check.rows, new=spool.count, already_present=check.present, problems=check.problems,
                           warnings=check.warnings)


def _commit(entry: AuditEntry, spool: RowSpool, corpus: Corpus, name: str) -> None:
    try:
        with entry.commit():
            _write(spool, corpus)
            entry.detail["corpus"] = corpus.pk
    except IntegrityError:
        raise ImportRejected([Problem(name, "another import stored this file or some of its ids while it was "
                                      "being checked; import it again to see what is left")]) from None


def import_corpus(
    path: str | Path,
    *,
    actor: Actor,
    sheets: list[str] | None = None,
    id_column: str | None = None,
    text_column: str | None = None,
    skip_invalid: bool = False,
    allow_cut_cells: bool = False,
    display_name: str | None = None,
    progress: Callable[[int], None] | None = None,
    client_address: str | None = None,
) -> ImportReport:
    """Imports every row of the file, or none if any row has a problem (unless ``skip_invalid``). A text of exactly
    32,767 characters in an xlsx cell was probably cut when saved: it is refused unless ``allow_cut_cells``."""
    path = Path(path)
    columns = Columns.corpus(id_column, text_column)
    name = display_name or path.name
    parameters = {"file": name, "sheets": sheets, "id_column": id_column, "text_column": text_column,
                  "skip_invalid": skip_invalid, "allow_cut_cells": allow_cut_cells}
    with audited(Action.IMPORT_CORPUS, actor=actor, target=name, parameters=parameters,
                 client_address=client_address, atomic=False) as entry:
        try:
            kind = file_kind(path, name)
        except FileRejected as exc:
            raise ImportRejected([exc.problem]) from None
        digest, selection = file_sha256(path), _selection(sheets, columns)
        previous = Corpus.objects.filter(sha256=digest, selection=selection).first()
        if previous is not None:
            entry.detail = {"already_imported": previous.pk}
            return ImportReport(corpus=previous, already_imported=True)
        with row_spool() as spool:
            check = _FileCheck(name, spool, allow_cut_cells=allow_cut_cells)
            check_file(path, kind, name, sheets, columns, check, progress)
            if check.problems and not skip_invalid:
                raise ImportRejected(check.problems)
            corpus = Corpus(file_name=name, sha256=digest, selection=selection, row_count=spool.count,
                            sheets=sorted(check.sheets), imported_by=actor_name(actor))
            entry.detail = {"imported": spool.count, "already_present": check.present,
                            "skipped": [str(p) for p in check.problems[:SHOWN_PROBLEMS]],
                            "skipped_count": len(check.problems),
                            "warnings": [str(p) for p in check.warnings[:SHOWN_PROBLEMS]]}
            _commit(entry, spool, corpus, name)
        checkpoint_wal()
        return ImportReport(corpus, imported=spool.count, already_present=check.present, skipped=check.problems,
                            warnings=check.warnings)
