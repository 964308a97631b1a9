"""import_corpus: validate a whole file first, then write all of it or none of it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from django.conf import settings

from annotation_site.files import file_sha256
from audit.actions import Action
from audit.actors import Actor, actor_name
from audit.services import audited
from workers_app.models import Corpus, Sample

from .readers import Columns, FileRejected, Problem, Row, open_rows

BATCH = 1000


class ImportRejected(Exception):
    """The file has problems; nothing was imported."""

    def __init__(self, problems: list[Problem]):
        self.problems = problems
        shown = "\n".join(f"  - {p}" for p in problems[:50])
        more = f"\n  … and {len(problems) - 50} more" if len(problems) > 50 else ""
        super().__init__(f"{len(problems)} problem(s); nothing was imported:\n{shown}{more}")


@dataclass
class ImportReport:
    corpus: Corpus | None
    imported: int = 0
    already_present: int = 0
    skipped: list[Problem] = field(default_factory=list)
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
        return "; ".join(parts) + "."


def _selection(sheets: list[str] | None, columns: Columns) -> str:
    return "|".join([",".join(sheets or ["*"]), columns.id_column or "", columns.text_column or ""])


def _row_problems(row: Row, file: str, first_seen: dict[str, Row]) -> list[Problem]:
    at = {"file": file, "sheet": row.sheet, "row": row.row}
    problems = []
    if not row.external_id:
        problems.append(Problem(**at, field="id", reason="empty id"))
    if not row.text.strip():
        problems.append(Problem(**at, field="text", reason="empty text"))
    elif len(row.text) > settings.MAX_SAMPLE_CHARS:
        problems.append(Problem(**at, field="text", reason=f"text is {len(row.text):,} characters; "
                                f"the limit is {settings.MAX_SAMPLE_CHARS:,}"))
    if row.external_id:
        earlier = first_seen.get(row.external_id)
        if earlier is not None:
            where = f"sheet '{earlier.sheet}' row {earlier.row}" if earlier.sheet else f"row {earlier.row}"
            problems.append(Problem(**at, field="id", reason=f"duplicate id '{row.external_id}' (first at {where})"))
        else:
            first_seen[row.external_id] = row
    return problems


def _existing_texts(ids: list[str]) -> dict[str, tuple[str, int]]:
    found: dict[str, tuple[str, int]] = {}
    for start in range(0, len(ids), 500):
        chunk = ids[start : start + 500]
        for ext, text, corpus_id in Sample.objects.filter(external_id__in=chunk).values_list(
            "external_id", "text", "corpus_id"
        ):
            found[ext] = (text, corpus_id)
    return found


def _validate(path: Path, rows: list[Row]) -> tuple[list[Row], list[Row], list[Problem], set[int]]:
    """Split rows into new, already present, and problems (with the indexes of the bad rows)."""
    problems: list[Problem] = []
    bad: set[int] = set()
    first_seen: dict[str, Row] = {}
    for index, row in enumerate(rows):
        found = _row_problems(row, path.name, first_seen)
        if found:
            problems.extend(found)
            bad.add(index)
    existing = _existing_texts([r.external_id for r in rows if r.external_id])
    new, present = [], []
    for index, row in enumerate(rows):
        if index in bad:
            continue
        stored = existing.get(row.external_id)
        if stored is None:
            new.append(row)
        elif stored[0] == row.text:
            present.append(row)
        else:
            problems.append(Problem(path.name, f"id '{row.external_id}' already exists (corpus #{stored[1]}) "
                                    "with different text", sheet=row.sheet, row=row.row, field="id"))
    return new, present, problems, bad


def import_corpus(
    path: str | Path,
    *,
    actor: Actor,
    sheets: list[str] | None = None,
    id_column: str | None = None,
    text_column: str | None = None,
    skip_invalid: bool = False,
    display_name: str | None = None,
    progress: Callable[[int], None] | None = None,
    client_address: str | None = None,
) -> ImportReport:
    path = Path(path)
    columns = Columns(id_column, text_column)
    name = display_name or path.name
    parameters = {"file": name, "sheets": sheets, "id_column": id_column, "text_column": text_column,
                  "skip_invalid": skip_invalid}
    with audited(Action.IMPORT_CORPUS, actor=actor, target=name, parameters=parameters,
                 client_address=client_address) as entry:
        rows: list[Row] = []
        try:
            for row in open_rows(path, sheets, columns):
                rows.append(row)
                if progress:
                    progress(1)
        except FileRejected as exc:
            raise ImportRejected([exc.problem]) from None
        digest = file_sha256(path)
        selection = _selection(sheets, columns)
        previous = Corpus.objects.filter(sha256=digest, selection=selection).first()
        if previous is not None:
            entry.detail = {"already_imported": previous.pk}
            return ImportReport(corpus=previous, already_imported=True)
        new, present, problems, _ = _validate(path, rows)
        if problems and not skip_invalid:
            raise ImportRejected(problems)
        corpus = Corpus.objects.create(
            file_name=name, sha256=digest, selection=selection, row_count=len(new),
            sheets=sorted({r.sheet for r in rows if r.sheet}), imported_by=actor_name(actor),
        )
        for start in range(0, len(new), BATCH):
            Sample.objects.bulk_create(
                Sample(external_id=r.external_id, text=r.text, corpus=corpus, source_sheet=r.sheet,
                       source_row=r.row)
                for r in new[start : start + BATCH]
            )
        entry.detail = {"corpus": corpus.pk, "imported": len(new), "already_present": len(present),
                        "skipped": [str(p) for p in problems]}
        return ImportReport(corpus, imported=len(new), already_present=len(present), skipped=problems)
