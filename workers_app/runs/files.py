"""Where a run's files live on each host: its folder, workbooks and consolidations."""

from __future__ import annotations

from pathlib import Path

from django.conf import settings

from workers_app.engine.keys import WorkerKey
from workers_app.models import DEFAULT_RUN, Run

from .current import current_run


def run_dir(run: Run | str) -> Path:
    return settings.DATA_DIR / "runs" / (run if isinstance(run, str) else run.name)


def consolidated_dir(run: Run | str | None) -> Path:
    """Where a run's consolidations go; for no run, DATA_DIR/consolidated, where those made before runs are."""
    return (settings.DATA_DIR if run is None else run_dir(run)) / "consolidated"


def annotations_dir(run: Run) -> Path:
    return run_dir(run) / "annotations"


def workbook_path(key: WorkerKey, run: Run | None = None) -> Path:
    """The worker's workbook of ``run`` (the current run when not given)."""
    return annotations_dir(run or current_run()) / f"{key}.xlsx"


def adopt_legacy_workbooks() -> list[str]:
    """Move the workbooks (and their journals) written before runs existed, in DATA_DIR/annotations, to the
    default run's folder on this host, unless that folder has them already; return the names moved. Each agent
    calls this at start, since every host keeps its own workbooks."""
    legacy = settings.ANNOTATIONS_DIR
    default = Run.objects.filter(name=DEFAULT_RUN).first()
    if default is None or not legacy.is_dir():
        return []
    target = annotations_dir(default)
    target.mkdir(parents=True, exist_ok=True)
    moved = []
    for path in sorted(legacy.iterdir()):
        if path.is_file() and not path.name.endswith(".lock") and not (target / path.name).exists():
            path.rename(target / path.name)  # the same file system: atomic, and no copy to lose on a kill
            moved.append(path.name)
    return moved
