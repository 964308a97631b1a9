"""What a run came from, as rows: the first sheet of its consolidated workbook.

Everything needed to run it again: the samples chosen, each annotator's model and settings, each domain's prompt,
few-shot examples and codes (as the run pinned them, or the live catalogue for the default run), the code version,
and what its outcomes actually saw (prompt versions and models, with counts and dates).
"""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass
from datetime import datetime

from django.conf import settings
from django.db.models import Count, Max, Min
from django.utils import timezone

from workers_app.models import Corpus, Outcome, Run
from workers_app.runs.current import run_annotators, run_domains, run_samples

ANNOTATOR_SETTINGS = ("name", "backend", "request_mode", "structured", "model", "temperature", "max_tokens",
                      "max_input_chars")


def code_version() -> str:
    """The commit the product runs from, marked when the checkout has local changes; 'unknown' outside git."""
    try:
        head = subprocess.run(["git", "rev-parse", "--short=12", "HEAD"], cwd=settings.BASE_DIR, capture_output=True,
                              text=True, timeout=5, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=settings.BASE_DIR,
                               capture_output=True, text=True, timeout=5, check=True).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return f"{head}+local-changes" if dirty else head


def _when(value) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S UTC") if value else ""


def _selection_rows(run: Run) -> list[list[object]]:
    if run.all_samples:
        return [["samples", "every sample in the store, also those imported later"]]
    chosen = run.selection
    corpora = Corpus.objects.filter(pk__in=chosen.get("corpora") or [])
    return [["corpora", "; ".join(f"{c.file_name} (sha256 {c.sha256})" for c in corpora) or "all"],
            ["share", chosen.get("share") if chosen.get("share") is not None else "all"],
            ["seed", chosen.get("seed")], ["limit", chosen.get("limit") or "none"]]


@dataclass(frozen=True)
class SeenVersion:
    """A prompt version and model that some of the run's outcomes of one (domain, annotator) came from."""

    domain: str
    annotator: int
    prompt_version: int
    model: str
    outcomes: int
    first: datetime
    last: datetime


def seen_versions(run: Run) -> list[SeenVersion]:
    """The prompt versions and models the run's outcomes actually came from, with when; one grouped query."""
    rows = (Outcome.objects.filter(run=run).values("domain__slug", "domain__position", "annotator__number",
                                                   "prompt_version", "model")
            .annotate(n=Count("id"), first=Min("created_at"), last=Max("created_at"))
            .order_by("domain__position", "domain__slug", "annotator__number", "prompt_version", "model"))
    return [SeenVersion(r["domain__slug"], r["annotator__number"], r["prompt_version"], r["model"], r["n"],
                        r["first"], r["last"]) for r in rows]


def _seen_rows(run: Run) -> list[list[object]]:
    return [[f"{s.domain} / annotator {s.annotator}",
             (f"prompt v{s.prompt_version}, model {s.model}: {s.outcomes} outcome(s), {_when(s.first)} to "
             f"{_when(s.last)}")] for s in seen_versions(run)]


def reproducibility_rows(run: Run) -> list[list[object]]:
    """One-cell rows are headings; the others are (what, value)."""
    source = "pinned when the run was made" if run.is_pinned else "the live catalogue (the default run pins nothing)"
    rows: list[list[object]] = [
        ["Run"], ["name", run.name], ["description", run.description], ["current run", "yes" if run.is_current else "no"],
        ["samples", run_samples(run).count()], ["created by", run.created_by], ["created at", _when(run.created_at)],
        ["first made current", _when(run.started_at)], ["code version when made", run.code_version or "unknown"],
        ["code version of this workbook", code_version()], ["consolidated at", _when(timezone.now())],
        ["budget", "none" if run.budget is None else f"{run.budget.normalize():f}"],
        [], ["Samples"], *_selection_rows(run),
        [], [f"Annotators ({source})"],
    ]
    for annotator in run_annotators(run):
        settings = ", ".join(f"{name} {getattr(annotator, name)}" for name in ANNOTATOR_SETTINGS)
        rows.append([f"annotator {annotator.number}", settings])
    rows += [[], [f"Domains ({source})"]]
    for domain in run_domains(run):
        rows += [[f"{domain.slug}: prompt version", domain.prompt_version],
                 [f"{domain.slug}: kind and codes", f"{domain.kind}: {', '.join(domain.code_list) or 'free text'}"],
                 [f"{domain.slug}: prompt", domain.prompt_template],
                 [f"{domain.slug}: few-shot examples", json.dumps(domain.few_shot, ensure_ascii=False) or "[]"],
                 [f"{domain.slug}: answer schema (structured outputs), version {domain.schema_version}",
                  json.dumps(domain.answer_schema, ensure_ascii=False)]]
    return [*rows, [], ["Seen in the outcomes"], *_seen_rows(run)]
