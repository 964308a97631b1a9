"""Helpers that tests share: waiting for a condition, making samples and outcomes, workbooks, a change form as a
browser posts it, `manage.py check`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import openpyxl
from django.db import models
from django.forms.models import model_to_dict
from django.utils import timezone

from workers_app.catalogue_defaults import DOMAINS
from workers_app.fleet.rows import select_workers
from workers_app.models import Annotator, Corpus, Domain, Outcome, ReferenceLabel, ReferenceSet, Sample, Worker

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATASETS = ROOT.parent / "shared" / "datasets"


def wait_until(condition, timeout: float = 30, what: str = "condition", explain=lambda: "") -> None:
    """Poll until ``condition`` holds; a timeout names what was awaited and what ``explain`` finds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out waiting for {what}\n{explain()}")
        time.sleep(0.1)


def make_samples(count: int, text: str = "I feel anxious before exams and cannot sleep.", *,
                 vary: bool = False) -> list[int]:
    """``count`` samples of a new corpus (the same text, or numbered with ``vary``); their ids."""
    corpus = Corpus.objects.create(file_name="made.csv", sha256=f"made-{count}-{Corpus.objects.count()}",
                                   imported_by="test")
    Sample.objects.bulk_create(Sample(external_id=f"S-{corpus.pk}-{i}", text=f"{text} (#{i})" if vary else text,
                                      corpus=corpus, source_row=i + 2) for i in range(count))
    return list(Sample.objects.filter(corpus=corpus).values_list("pk", flat=True))


def store_outcome(run, sample_id: int, annotator: int, domain: str, labels: list[str], *, status: str = "ok",
                  prompt_version: int = 1, model: str = "model-x") -> Outcome:
    """One stored outcome of ``run``, made directly (not through the engine)."""
    return Outcome.objects.create(
        run=run, sample_id=sample_id, annotator=Annotator.objects.get(number=annotator),
        domain=Domain.objects.get(slug=domain), status=status, labels=labels if status == "ok" else [],
        prompt_version=prompt_version, model=model, started_at=timezone.now())


def make_reference(name: str, labels: dict[tuple[int, str, str], list[str]], kind: str = "expert") -> ReferenceSet:
    """A reference set of ``labels``: (sample id, domain slug, rater) -> codes."""
    found = ReferenceSet.objects.create(name=name, kind=kind, created_by="test")
    domains = {d.slug: d for d in Domain.objects.all()}
    ReferenceLabel.objects.bulk_create(ReferenceLabel(reference_set=found, sample_id=sample, domain=domains[slug],
                                                      rater=rater, labels=codes)
                                       for (sample, slug, rater), codes in labels.items())
    return found


def worker(number: int, domain: str) -> Worker:
    """The Worker row of annotator ``number`` in ``domain``."""
    [row] = select_workers(number, domain)
    return row


def stored(number: int, domain: str) -> int:
    """How many outcomes this worker has stored, in any run."""
    return Outcome.objects.filter(annotator__number=number, domain__slug=domain).count()


def write_xlsx(path: Path, sheets: dict[str, list[tuple]]) -> Path:
    """A workbook with these sheets and rows."""
    book = openpyxl.Workbook()
    book.remove(book.active)
    for title, rows in sheets.items():
        sheet = book.create_sheet(title)
        for row in rows:
            sheet.append(row)
    book.save(path)
    return path


def fresh_product_env(data_dir: Path, **env: str) -> dict[str, str]:
    """The product's own settings on a DATA_DIR of the test's (and so its own SQLite database): never the database
    that DATABASE_URL names for the suite, which may be a real one."""
    inherited = {name: value for name, value in os.environ.items() if name != "DATABASE_URL"}
    return {**inherited, "DJANGO_SETTINGS_MODULE": "annotation_site.settings", "DATA_DIR": str(data_dir), **env}


def run_check(tmp_path: Path, **env: str) -> subprocess.CompletedProcess:
    """`manage.py check` in a fresh process with the product's settings, DATA_DIR ``tmp_path`` and ``env``."""
    return subprocess.run([sys.executable, "manage.py", "check"], cwd=ROOT, env=fresh_product_env(tmp_path, **env),
                          capture_output=True, text=True, check=False)


def default_domain_specs() -> dict[str, tuple[str, list[str], dict]]:
    """Each default domain's kind, codes and parse rules by slug, without a database."""
    return {spec["slug"]: (spec["kind"], [entry["code"] for entry in spec["codes"]], spec.get("parse_rules", {}))
            for spec in DOMAINS}


def form_data(obj: models.Model, **changes: object) -> dict:
    """A change form of ``obj`` as a browser posts it back: every field's value (a checkbox only when ticked,
    JSON as text, nothing for None), with ``changes`` over it. Fields the form does not show are ignored by it."""
    data = {}
    for name, value in model_to_dict(obj).items():
        field = obj._meta.get_field(name)
        if isinstance(field, models.JSONField):
            data[name] = json.dumps(value)
        elif isinstance(field, models.BooleanField):
            if value:
                data[name] = "on"
        elif value is not None:
            data[name] = value
    data.update(changes)
    return data
