"""One workbook of everything: a sheet per domain, Summary, Agreement and the clinical-safety Review list,
plus CSV and JSON-lines copies of the consolidated table. Built from the store (the source of truth).

The review queue's items are synced from the store first, so the Review sheet lists exactly the queue; reviewers'
adjudicated labels get a column on each domain sheet and, where any exist, each annotator's agreement with them a
block on the Agreement sheet."""

from __future__ import annotations

import csv
import json
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING
from zipfile import ZIP_DEFLATED, ZipFile

from django.db import connection
from django.utils import timezone

from annotation_site.files import atomic_write
from audit.actions import Action
from audit.actors import Actor
from audit.services import audited
from stats.agreement import (
    BINARY_PREFIX,
    AlphaResult,
    KappaMatrix,
    ReferenceAgreement,
    agreement_with_reference,
    fleiss_kappa,
    krippendorff_alpha,
    majority_label,
    pairwise_kappa,
    per_code_binary_alpha,
)
from workers_app.engine.cost import cost_totals
from workers_app.excel.journal import safe_cell_text
from workers_app.models import (
    ADJUDICATED_SET,
    Domain,
    Outcome,
    ReferenceLabel,
    ReferenceSet,
    ReviewItem,
    Run,
    RunSample,
)
from workers_app.references.quality import RunQuality, run_quality
from workers_app.review.flags import URGENCY, describe, sync_review_items
from workers_app.review.selectors import run_review_items
from workers_app.runs.current import current_run, run_annotators, run_domains, run_samples
from workers_app.runs.files import consolidated_dir
from workers_app.runs.record import reproducibility_rows

from .csv_safe import FORMULA_STARTS, csv_row
from .progress import Progress, no_progress

if TYPE_CHECKING:
    from openpyxl import Workbook

MISSING = None


@dataclass
class Table:
    """Labels of one domain: labels[annotator][sample index], None when missing or malformed."""

    domain: Domain
    annotators: list[int]
    samples: list[str]
    labels: dict[int, list[object]]
    statuses: dict[int, list[str]]
    majority: list[tuple[object, bool]] = field(default_factory=list)
    adjudicated: list[object] = field(default_factory=list)  # the reviewer's label per sample, None if none
    gold: list[bool] = field(default_factory=list)  # per sample: a gold item of the run (empty: the run has none)
    # confidences[annotator][sample index]: the stored label's probability (logprobs, the trained baseline), else None
    confidences: dict[int, list[float | None]] = field(default_factory=dict)

    @property
    def has_confidence(self) -> bool:
        """Whether any label of this domain has a confidence: only then does its sheet give them a column."""
        return any(value is not None for given in self.confidences.values() for value in given)

    def settle(self) -> None:
        """The majority label and agreement flag of every sample, computed once for all the outputs."""
        columns = [self.labels[a] for a in self.annotators]
        self.majority = [majority_label(given) for given in zip(*columns, strict=True)] if columns else []


@dataclass
class ConsolidateReport:
    path: Path
    csv_path: Path
    jsonl_path: Path
    review: int = 0
    agreement: dict[str, dict] = field(default_factory=dict)


def _value(domain: Domain, labels: list[str]) -> object:
    if domain.kind in (Domain.Kind.ORDINAL, Domain.Kind.NOMINAL):
        return labels[0] if labels else None
    if domain.kind == Domain.Kind.CODE_SET:
        return frozenset(labels)
    return tuple(labels)


def _text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, (frozenset, tuple)):
        return "; ".join(sorted(value)) if isinstance(value, frozenset) else "; ".join(value)
    return str(value)


_OUTCOME_ROWS = (f"SELECT sample_id, annotator_id, domain_id, status, labels, reason, latency_ms, prompt_tokens, "
                 f"completion_tokens, confidence FROM {Outcome._meta.db_table} WHERE run_id = %s")


def load_tables(run: Run) -> tuple[list[Table], list[dict]]:
    """Every outcome of the run into its domain's table, in one plain query: the ORM's joins and one JSON decoding
    per row cost more than the rest of the reading, and a run repeats few distinct labels (decoded once each)."""
    samples = list(run_samples(run).order_by("id").values_list("id", "external_id"))
    where = {pk: index for index, (pk, _) in enumerate(samples)}
    external_ids = [external_id for _, external_id in samples]
    number_of = {a.pk: a.number for a in run_annotators(run)}
    annotators = sorted(number_of.values())
    golden = set(RunSample.objects.filter(run=run, gold=True).values_list("sample_id", flat=True))
    gold = [pk in golden for pk, _ in samples] if golden else []
    tables = {d.pk: Table(d, annotators, external_ids, {a: [MISSING] * len(samples) for a in annotators},
                          {a: [""] * len(samples) for a in annotators}, gold=gold,
                          confidences={a: [None] * len(samples) for a in annotators}) for d in run_domains(run)}
    summary: dict[tuple[str, int], dict] = defaultdict(lambda: {"ok": 0, "malformed": 0, "refusals": 0,
                                                                "latency": 0, "tokens": 0})
    decoded: dict[tuple[int, str], object] = {}
    with connection.cursor() as cursor:
        cursor.execute(_OUTCOME_ROWS, [run.pk])
        for sample_id, annotator_id, domain_id, status, labels, reason, latency, p_tokens, c_tokens, confidence \
                in cursor:
            table, index = tables.get(domain_id), where.get(sample_id)
            if index is None or table is None or annotator_id not in number_of:
                continue  # imported after the samples were read, or a row the run does not cover (yet)
            annotator = number_of[annotator_id]
            table.statuses[annotator][index] = status
            if status == Outcome.Status.OK:
                if (domain_id, labels) not in decoded:
                    decoded[(domain_id, labels)] = _value(table.domain, json.loads(labels))
                table.labels[annotator][index] = decoded[(domain_id, labels)]
                table.confidences[annotator][index] = confidence
            entry = summary[(table.domain.slug, annotator)]
            entry[status] += 1
            entry["refusals"] += reason == "refusal"
            entry["latency"] += latency
            entry["tokens"] += (p_tokens or 0) + (c_tokens or 0)
    summary_rows = []
    for (slug, annotator), entry in sorted(summary.items()):
        done = entry["ok"] + entry["malformed"]
        summary_rows.append({"domain": slug, "annotator": annotator, "ok": entry["ok"],
                             "malformed": entry["malformed"], "malformed_rate": entry["malformed"] / done,
                             "refusal_rate": entry["refusals"] / done, "mean_latency_ms": entry["latency"] / done,
                             "tokens": entry["tokens"]})
    return list(tables.values()), summary_rows


def review_items(run: Run) -> list[ReviewItem]:
    """The run's part of the review queue in its order (highest risk first, then oldest), after deriving any flag
    the store holds but the queue lost."""
    sync_review_items()
    return list(run_review_items(run).select_related("sample", "reviewed_by"))


def adjudicate_tables(tables: list[Table], items: list[ReviewItem]) -> None:
    by_sample = {item.sample.external_id: item.adjudicated for item in items if item.adjudicated}
    for table in tables:
        slug = table.domain.slug
        table.adjudicated = [_value(table.domain, by_sample[e][slug]) if slug in by_sample.get(e, {}) else None
                             for e in table.samples]


def sample_texts(run: Run) -> dict[str, str]:
    return dict(run_samples(run).values_list("external_id", "text"))


def _matrix(table: Table) -> list[list[object]]:
    return [table.labels[a] for a in table.annotators]


def agreement(table: Table) -> dict:
    """Alpha (with its 95 % bootstrap interval) and kappa for one domain; malformed labels are missing."""
    kind, codes, names = table.domain.kind, table.domain.code_list, [f"annotator {a}" for a in table.annotators]
    if kind in (Domain.Kind.ORDINAL, Domain.Kind.NOMINAL):
        ordinal = kind == Domain.Kind.ORDINAL
        return {"alpha": [krippendorff_alpha(_matrix(table), level="ordinal" if ordinal else "nominal",
                                             categories=codes)],
                "kappa": pairwise_kappa(_matrix(table), names, categories=codes, weighted=ordinal),
                "fleiss": [fleiss_kappa(_matrix(table), categories=codes)]}
    if kind == Domain.Kind.CODE_SET:
        per_code = per_code_binary_alpha(_matrix(table), codes)
        fleiss = [fleiss_kappa(_matrix(table), level=f"{BINARY_PREFIX}{code}") for code in codes]
        return {"alpha": [krippendorff_alpha(_matrix(table), level="masi"), *per_code.values()], "kappa": None,
                "fleiss": fleiss}
    return {"alpha": [], "kappa": None, "fleiss": []}


def agreement_with_adjudicated(table: Table) -> dict[int, ReferenceAgreement]:
    """Each annotator against the reviewers' labels (samples with both); kappa for ordinal (quadratic weights)
    and nominal domains. Empty when no sample of the domain is adjudicated."""
    if not any(value is not None for value in table.adjudicated):
        return {}
    kind = table.domain.kind
    coded = kind in (Domain.Kind.ORDINAL, Domain.Kind.NOMINAL)
    return {a: agreement_with_reference(table.labels[a], table.adjudicated,
                                        categories=table.domain.code_list if coded else None,
                                        weighted=kind == Domain.Kind.ORDINAL)
            for a in table.annotators}


def _adjudicated_rows(stats: dict) -> list[list[object]]:
    rows = []
    for slug, found in stats.items():
        weights = found.get("weights", "")
        for annotator, result in found.get("adjudicated", {}).items():
            rows.append([slug, f"annotator {annotator}", result.n, result.accuracy, result.kappa, weights])
    return rows


def _cell(sheet, value: object, bold: bool = False) -> object:
    """A plain value where that is safe (most cells: it is much faster); a typed text cell where openpyxl would
    otherwise write a formula or the text needs cleaning."""
    text = isinstance(value, str)
    risky = text and (value.startswith(FORMULA_STARTS) or safe_cell_text(value) != value)
    if not (bold or risky):
        return value
    from openpyxl.cell import WriteOnlyCell
    from openpyxl.styles import Font

    cell = WriteOnlyCell(sheet, value=safe_cell_text(value) if text else value)
    if text:
        cell.data_type = "s"  # text that starts with '=' stays text, never a formula
    if bold:
        cell.font = Font(bold=True)
    return cell


def _append(sheet, values: list[object], bold: bool = False) -> None:
    sheet.append([_cell(sheet, v, bold) for v in values])


def _domain_rows(table: Table, texts: dict[str, str]) -> list[list[object]]:
    rows, confident = [], table.has_confidence
    for index, external_id in enumerate(table.samples):
        majority, agreed = table.majority[index]
        cells = [external_id]
        for annotator in table.annotators:
            cells += [_text(table.labels[annotator][index]), table.statuses[annotator][index] or "missing"]
            if confident:
                cells.append(table.confidences[annotator][index])
        gold = ["yes" if table.gold[index] else "no"] if table.gold else []
        rows.append([*cells, _text(majority), "yes" if agreed else "no", _text(table.adjudicated[index]), *gold,
                     texts.get(external_id, "")])
    return rows


def _review_sheet_rows(items: list[ReviewItem], tables: list[Table], texts: dict[str, str]) -> list[list[object]]:
    """One row per review item: why, its state, the reviewer's urgency, each annotator's urgency, the post."""
    urgency = next((t for t in tables if t.domain.slug == URGENCY), None)
    where = {external_id: index for index, external_id in enumerate(urgency.samples)} if urgency else {}
    rows = []
    for item in items:
        external_id = item.sample.external_id
        index = where.get(external_id)
        given = [_text(urgency.labels[a][index]) if index is not None else "" for a in urgency.annotators] \
            if urgency else []
        rows.append([external_id, describe(item.reasons, item.spread), item.risk, item.status,
                     item.reviewed_by.get_username() if item.reviewed_by else "",
                     ", ".join(item.adjudicated.get(URGENCY, [])), item.note, *given, texts.get(external_id, "")])
    return rows


def _alpha_row(slug: str, result: AlphaResult) -> list[object]:
    return [slug, result.level, result.alpha, result.ci95.low, result.ci95.high, result.n_units]


def _kappa_rows(slug: str, kappa: KappaMatrix) -> list[list[object]]:
    rows = [[f"{slug}: Cohen's kappa ({kappa.weights} weights)", *kappa.annotators]]
    rows += [[name, *values] for name, values in zip(kappa.annotators, kappa.values, strict=True)]
    return rows


def _estimate_cells(estimate) -> list[object]:
    return [estimate.value, estimate.ci95.low, estimate.ci95.high]


def quality_sheet_rows(found: RunQuality) -> list[tuple[list[object], bool]]:
    """The Quality sheet: the reference set's provenance, then per domain a row per labeller (each figure with its
    95 % interval), each one-code domain's confusion matrices, and the Alternative Annotator Test. (row, bold)."""
    reference = found.reference_set
    rows: list[tuple[list[object], bool]] = [
        ([f"Quality of run {found.run.name} against reference set {reference.name}"], True),
        (["kind", reference.kind], False), (["source", reference.source], False),
        (["citation", reference.citation], False), (["licence", reference.licence], False),
        (["value map", "; ".join(f"{slug}: " + ", ".join(f"{v}={c}" for v, c in mapped.items())
                                 for slug, mapped in reference.value_map.items())], False),
        ([(f"95 % bootstrap intervals from {found.bootstrap} resamples of the items; a malformed answer is no "
          "label (not compared; counted as malformed)")], False), ([], False)]
    if found.nothing_in_common:
        return [*rows, ([found.nothing_in_common], False)]
    figures = ("accuracy", "macro-F1", "kappa", "malformed", "refused")
    header = ["domain", "labeller", "n (comparisons)", "items"]
    for name in figures:
        header += [name, f"{name} 95 % low", f"{name} 95 % high"]
    rows.append(([*header, "kappa weights"], True))
    for domain in found.domains:
        for row in domain.rows:
            result = row.result
            cells = [domain.slug, row.name, result.n, result.items]
            for estimate in (result.accuracy, result.macro_f1, result.kappa, row.malformed, row.refused):
                cells += _estimate_cells(estimate)
            rows.append(([*cells, result.kappa_weights], False))
    for domain in found.domains:
        for row in domain.rows:
            if row.result.confusion:
                rows += [([], False), ([f"{domain.slug}: {row.name} (rows: reference, columns: given)",
                                        *row.result.labels], True)]
                rows += [([label, *counts], False) for label, counts in zip(row.result.labels, row.result.confusion,
                                                                            strict=True)]
    tests = [(domain.slug, test) for domain in found.domains for test in domain.alt_tests]
    if tests:
        rows += [([], False), (["domain", "Alternative Annotator Test", "passed", "winning rate",
                                "advantage probability", "epsilon", "raters tested"], True)]
        rows += [([slug, f"annotator {t.annotator}", "yes" if t.result.passed else "no", t.result.winning_rate,
                   t.result.advantage_probability, t.result.epsilon, t.result.tested], False) for slug, t in tests]
    return rows


def _write_workbook(path: Path, run_rows: list[list[object]], tables: list[Table], summary: list[dict],
                    stats: dict, review: list, texts: dict[str, str],
                    quality_rows: list[tuple[list[object], bool]]) -> None:
    # openpyxl is imported where a workbook is written, not with the module: the admin imports this module in every
    # process's start-up (manage.py quality, the workers), which need no workbook.
    from openpyxl import Workbook

    book = Workbook(write_only=True)
    sheet = book.create_sheet("Run")
    sheet.column_dimensions["B"].width = 100
    for row in run_rows:
        _append(sheet, row, bold=len(row) == 1)
    for table in tables:
        sheet = book.create_sheet(table.domain.slug[:31])
        sheet.freeze_panes = "B2"
        header = ["sample id"]
        for annotator in table.annotators:
            header += [f"annotator {annotator} label", f"annotator {annotator} status"]
            if table.has_confidence:  # the label's probability, empty where the outcome has none
                header.append(f"annotator {annotator} confidence")
        # Only a run with gold checks has the column: which items were gold is the run's to tell, not the worker's.
        gold = ["gold item"] if table.gold else []
        _append(sheet, [*header, "majority label", "all agree", "adjudicated label", *gold, "post text"], bold=True)
        for row in _domain_rows(table, texts):
            _append(sheet, row)
    sheet = book.create_sheet("Summary")
    _append(sheet, ["domain", "annotator", "ok", "malformed", "malformed rate", "refusal rate", "mean latency ms",
                    "tokens", "cost", "currency", "cached answers", "money saved by the cache"], bold=True)
    for row in summary:
        _append(sheet, list(row.values()))
    sheet = book.create_sheet("Agreement")
    _append(sheet, ["domain", "measure", "Krippendorff's alpha", "95 % CI low", "95 % CI high", "units"], bold=True)
    for slug, found in stats.items():
        for result in found["alpha"]:
            _append(sheet, _alpha_row(slug, result))
    _append(sheet, [])
    _append(sheet, ["domain", "measure", "Fleiss' kappa", "95 % CI low", "95 % CI high", "units"], bold=True)
    for slug, found in stats.items():
        for result in found["fleiss"]:
            _append(sheet, [slug, result.level, result.kappa, result.ci95.low, result.ci95.high, result.n_units])
    for slug, found in stats.items():
        if found["kappa"] is not None:
            _append(sheet, [])
            for row in _kappa_rows(slug, found["kappa"]):
                _append(sheet, row)
    adjudicated = _adjudicated_rows(stats)
    if adjudicated:
        _append(sheet, [])
        _append(sheet, ["domain", "annotator vs adjudicated labels", "samples", "accuracy (exact match)",
                        "Cohen's kappa", "kappa weights"], bold=True)
        for row in adjudicated:
            _append(sheet, row)
    sheet = book.create_sheet("Review")
    names = [f"annotator {a} urgency" for a in (tables[0].annotators if tables else [])]
    _append(sheet, ["sample id", "why a human must read it first", "risk", "status", "reviewed by",
                    "adjudicated urgency", "note", *names, "post text"], bold=True)
    for row in review:
        _append(sheet, row)
    if quality_rows:
        sheet = book.create_sheet("Quality")
        for row, bold in quality_rows:
            _append(sheet, row, bold=bold)
    _save(book, path)


def _save(book: Workbook, path: Path) -> None:
    """openpyxl's save at the fastest deflate level: with the post text on every domain sheet, compressing at the
    default level was the largest cost of a consolidation (0.7 s for 1,871 posts); the file is about a fifth
    larger."""
    with ZipFile(path, "w", ZIP_DEFLATED, allowZip64=True, compresslevel=1) as archive:
        from openpyxl.writer.excel import ExcelWriter

        ExcelWriter(book, archive).save()


def _weights(domain: Domain) -> str:
    return {Domain.Kind.ORDINAL: "quadratic", Domain.Kind.NOMINAL: "none"}.get(domain.kind, "")


def _write_flat(csv_path: Path, jsonl_path: Path, tables: list[Table]) -> None:
    gold = bool(tables and tables[0].gold)  # a run with gold checks: its gold items are marked
    header = ["domain", "sample_id", *[f"annotator_{a}" for a in (tables[0].annotators if tables else [])],
              "majority", "all_agree", *(["gold_item"] if gold else [])]

    def records():
        for table in tables:
            for index, external_id in enumerate(table.samples):
                given = [table.labels[a][index] for a in table.annotators]
                majority, agreed = table.majority[index]
                yield [table.domain.slug, external_id, *[_text(g) for g in given], _text(majority), agreed,
                       *([table.gold[index]] if gold else [])]

    def write_csv(temp: Path) -> None:
        with temp.open("w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(header)
            writer.writerows(csv_row(record) for record in records())

    def write_jsonl(temp: Path) -> None:
        with temp.open("w", encoding="utf-8") as handle:
            for record in records():
                handle.write(json.dumps(dict(zip(header, record, strict=True)), ensure_ascii=False) + "\n")

    atomic_write(csv_path, write_csv)
    atomic_write(jsonl_path, write_jsonl)


def _add_costs(summary: list[dict], run: Run) -> None:
    """Cost, cache hits and money saved per (domain, annotator); cost stays empty where no outcome has a price."""
    totals = {(t.domain, t.annotator): t for t in cost_totals(run=run)}
    for row in summary:
        total = totals.get((row["domain"], row["annotator"]))
        priced = total is not None and total.priced > 0
        row.update({"cost": float(total.cost) if priced else None, "currency": total.currency if priced else "",
                    "cached": total.cached if total else 0,
                    "saved": float(total.saved) if total and total.cached else None})


def _quality_reference(chosen: ReferenceSet | None) -> ReferenceSet | None:
    """The set the Quality sheet measures against: the one chosen, else the review queue's adjudications when
    reviewers have recorded any."""
    if chosen is not None:
        return chosen
    return ReferenceSet.objects.filter(name=ADJUDICATED_SET, pk__in=ReferenceLabel.objects.values(
        "reference_set_id")).first()


def consolidate(path: str | Path | None = None, *, actor: Actor, run: Run | None = None,
                reference: ReferenceSet | None = None, progress: Progress | None = None) -> ConsolidateReport:
    """Consolidate one run (the current one when not given) into DATA_DIR/runs/<run>/consolidated/, or ``path``;
    with a Quality sheet against ``reference`` (or the adjudicated set, when it has labels).
    ``progress(done, total, stage)`` hears of each step: reading, each domain's statistics, writing."""
    run = run or current_run()
    target = Path(path) if path else consolidated_dir(run) / f"consolidated-{timezone.now():%Y%m%d-%H%M%S}.xlsx"
    target.parent.mkdir(parents=True, exist_ok=True)
    report = ConsolidateReport(target, target.with_suffix(".csv"), target.with_suffix(".jsonl"))
    step = progress or no_progress
    with audited(Action.CONSOLIDATE, actor=actor, target=target.name,
                 parameters={"run": run.name, "reference": reference.name if reference else None},
                 atomic=False) as entry:
        step(0, 0, "reading the store")
        items = review_items(run)
        tables, summary = load_tables(run)
        _add_costs(summary, run)
        texts = sample_texts(run)
        adjudicate_tables(tables, items)
        steps = len(tables) + 3
        stats = {}
        for done, table in enumerate(tables, start=1):
            step(done, steps, f"agreement statistics: {table.domain.slug}")
            table.settle()
            stats[table.domain.slug] = {**agreement(table), "adjudicated": agreement_with_adjudicated(table),
                                        "weights": _weights(table.domain)}
        review = _review_sheet_rows(items, tables, texts)
        run_rows = reproducibility_rows(run)
        measured = _quality_reference(reference)
        quality_rows = quality_sheet_rows(run_quality(run, measured)) if measured else []
        step(steps - 2, steps, "writing the workbook")
        atomic_write(target, lambda temp: _write_workbook(temp, run_rows, tables, summary, stats, review, texts,
                                                          quality_rows))
        step(steps - 1, steps, "writing the CSV and JSON-lines copies")
        _write_flat(report.csv_path, report.jsonl_path, tables)
        step(steps, steps, "done")
        report.review = len(review)
        report.agreement = {slug: {r.level: r.alpha for r in found["alpha"]} for slug, found in stats.items()}
        entry.detail = {"review": report.review, "alpha": report.agreement}
    return report
