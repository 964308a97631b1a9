"""What /files/ lists: the consolidated workbooks in DATA_DIR/consolidated and in each run's
DATA_DIR/runs/<run>/consolidated (who made each and when, from the audit log), and the archives. A download is served
only for a name on these lists (and a run the store knows), so a name from a URL never becomes a path of its own."""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from django.conf import settings
from django.core.exceptions import ValidationError

from admin_ops.models import Archive
from audit.actions import Action
from audit.models import AuditLog
from workers_app.models import Run
from workers_app.models.runs import RUN_NAME
from workers_app.runs.files import consolidated_dir

FORMATS = (".xlsx", ".csv", ".jsonl")  # the workbook and its flat copies (admin_ops.services.consolidate)
MAX_NAME = 255


class NotListed(LookupError):
    """The name is not a file on the page's lists."""


@dataclass(frozen=True)
class StoredFile:
    name: str
    size: int


@dataclass(frozen=True)
class Consolidation:
    workbook: str
    files: list[StoredFile]  # the workbook first, then its CSV and JSON-lines copies
    made_at: datetime
    made_by: str | None  # None: no audit row names this file (e.g. copied in by hand)


@dataclass(frozen=True)
class RunConsolidations:
    run: str
    consolidations: list[Consolidation]


def consolidated_files(folder: Path | None = None) -> dict[str, Path]:
    """Regular files of a consolidated folder (DATA_DIR/consolidated unless given) in the known formats; not the
    hidden temporary files of a consolidation still being written, and no symbolic links."""
    try:
        entries = list(os.scandir(folder or consolidated_dir(None)))
    except (FileNotFoundError, NotADirectoryError):
        return {}
    return {entry.name: Path(entry.path) for entry in entries
            if entry.name.endswith(FORMATS) and not entry.name.startswith(".")
            and entry.is_file(follow_symlinks=False)}


def consolidations(folder: Path | None = None, *, run: str | None = None) -> list[Consolidation]:
    """One entry per consolidation of a folder (see ``consolidated_files``), newest first; ``run`` names the run
    whose audit rows tell who made them."""
    files = consolidated_files(folder)
    stems: dict[str, list[Path]] = {}
    for name in sorted(files, key=lambda n: FORMATS.index(Path(n).suffix)):
        stems.setdefault(Path(name).stem, []).append(files[name])
    made = _made_by_whom((f"{stem}.xlsx" for stem in stems), run)
    found = []
    for stem, paths in stems.items():
        sizes = [StoredFile(path.name, path.stat().st_size) for path in paths]
        at, actor = made.get(f"{stem}.xlsx", (datetime.fromtimestamp(paths[0].stat().st_mtime, tz=UTC), None))
        found.append(Consolidation(f"{stem}.xlsx", sizes, at, actor))
    return sorted(found, key=lambda c: c.made_at, reverse=True)


def _made_by_whom(workbooks, run: str | None) -> dict[str, tuple[datetime, str]]:
    rows = AuditLog.objects.filter(action=Action.CONSOLIDATE, result=AuditLog.Result.OK, target__in=list(workbooks))
    if run is not None:  # two runs' workbooks may share a time-stamped name
        rows = rows.filter(parameters__run=run)
    return {target: (at, actor) for target, at, actor in rows.order_by("at", "id").values_list("target", "at", "actor")}


def consolidated_file(name: str) -> Path:
    path = consolidated_files().get(name)
    if path is None:
        raise NotListed(name)
    return path


def _run_folder(run: Run) -> Path | None:
    """The run's consolidated folder; None when it, or the run's folder, is a symbolic link (it could lead out of
    DATA_DIR)."""
    folder = consolidated_dir(run)
    return None if folder.parent.is_symlink() or folder.is_symlink() else folder


def consolidations_of(run: Run) -> list[Consolidation]:
    folder = _run_folder(run)
    return consolidations(folder, run=run.name) if folder else []


def run_consolidations() -> list[RunConsolidations]:
    """The consolidations of every run the store knows (a folder of a deleted run is not listed), newest run
    first; runs without any are left out."""
    found = (RunConsolidations(run.name, consolidations_of(run)) for run in Run.objects.order_by("-created_at", "-id"))
    return [entry for entry in found if entry.consolidations]


def run_consolidated_file(run_name: str, name: str) -> Path:
    # The run part is checked against the run names' own rule before any query: it refuses '..', '/' and NUL.
    try:
        RUN_NAME(run_name)
    except ValidationError:
        raise NotListed(run_name) from None
    run = Run.objects.filter(name=run_name).first()
    folder = _run_folder(run) if run is not None else None
    path = consolidated_files(folder).get(name) if folder is not None else None
    if path is None:
        raise NotListed(name)
    return path


def archives() -> list[Archive]:
    return list(Archive.objects.order_by("-created_at"))


def archive_file(name: str) -> tuple[Archive, Path]:
    # PostgreSQL refuses a NUL inside a string parameter; such a name cannot be an archive's anyway.
    if "\x00" in name or len(name) > MAX_NAME:
        raise NotListed(name)
    archive = Archive.objects.filter(name=name).first()
    if archive is None or Path(archive.file_name).name != archive.file_name:
        raise NotListed(name)
    path = settings.ARCHIVES_DIR / archive.file_name
    if not path.is_file() or path.is_symlink():
        raise NotListed(name)
    return archive, path
