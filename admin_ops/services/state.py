"""Export and import of the console's state: catalogue (with budgets and the response cache setting), price
versions, run definitions, worker desired states, progress and a store summary.

A versioned JSON document. Import validates the whole document first (schema, version, every value by the
models' own rules, references between its parts), shows what would change, and changes nothing on any error.
API keys are never in it: annotators carry the NAME of their key's environment variable only.

An import adds the prices and runs the console lacks and updates the ones it has by (annotator, valid_from) and
by name; it keeps those the document does not hold. A run's settings never change (a run of the same name with
other settings is refused); only its description and budget do. An import never changes which run is current.
Reference sets (version 3) carry their provenance only, their labels travel in archives: an import updates the
description, source, licence, citation and stated raters of a set the console has from the same file, and names
the sets it lacks (import their files, or restore an archive). Older documents still import and leave what they lack
as it is: version 1 (before budgets, prices and runs), version 2 (before reference sets, structured outputs and
prompt-cache prices) and version 3 (before each annotator's request_logprobs, self-consistency and batch mode, each
domain's review thresholds and each price's batch discount).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import BinaryIO

from django.core.exceptions import NON_FIELD_ERRORS, ValidationError
from django.db import models

from annotation_site.field_rules import field_problem
from annotation_site.files import atomic_write
from audit.actions import Action
from audit.actors import Actor
from audit.services import audited
from workers_app.fleet.rows import ensure_worker_rows
from workers_app.models import Annotator, AnnotatorPrice, Domain, ReferenceSet, Run, Sample, Worker
from workers_app.runs.definitions import NULLABLE_TEXT, checked_run, create_runs, run_set_problems

from ..selectors import (
    ANNOTATOR_FIELDS,
    DOMAIN_FIELDS,
    FORMAT,
    NULLABLE_NUMBER,
    PRICE_FIELDS,
    REFERENCE_STATE_FIELDS,
    VERSION,
    fields_of_version,
    state_document,
)

DESIRED = {choice for choice, _ in Worker.Desired.choices}
WORKER_FIELDS = {"annotator": int, "domain": str, "desired_state": str}
MAX_DOCUMENT_BYTES = 5 * 1024 * 1024
# Deeper than any real export; it keeps the models' checks and the database's JSON encoder off recursion limits.
MAX_DEPTH = 32
MAX_PROBLEMS_SHOWN = 50
KIND_NAMES = {str: "text", int: "a whole number", bool: "true or false", list: "a list", dict: "an object",
              NULLABLE_TEXT: "text or null", (int, type(None)): "a whole number or null",
              NULLABLE_NUMBER: "a number or null"}
READABLE_VERSIONS = tuple(range(1, VERSION + 1))
# What an import sets of a price version (a document before version 3 has no prompt-cache prices).
PRICE_VALUES = ("input_per_1k", "output_per_1k", "cache_read_per_1k", "cache_write_per_1k", "currency",
                "batch_percent")
# What an import may change of a run the console has.
RUN_EDITABLE = ("description", "budget")
# What an import may change of a reference set the console has from the same file.
REFERENCE_EDITABLE = ("description", "source", "licence", "citation", "raters")


class StateError(ValueError):
    """The document is not a valid state export; nothing was changed."""


def export_state(*, actor: Actor, target: str, destination: Path | None = None,
                 client_address: str | None = None) -> str:
    """The state document as JSON text, written atomically to ``destination`` when one is given."""
    with audited(Action.EXPORT_STATE, actor=actor, target=target, client_address=client_address):
        text = json.dumps(state_document(), indent=1, sort_keys=True)
        if destination is not None:
            atomic_write(destination, lambda temp: temp.write_text(text))
    return text


def read_document(handle: BinaryIO, *, source: str) -> str:
    """The text of an uploaded or named state file, read no further than the size limit allows."""
    data = handle.read(MAX_DOCUMENT_BYTES + 1)
    if len(data) > MAX_DOCUMENT_BYTES:
        raise StateError(f"{source}: larger than the limit of {MAX_DOCUMENT_BYTES:,} bytes for a state document")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise StateError(f"{source}: not UTF-8 text (byte {exc.start}); is it a state export?") from None


class _NotFinite:
    """A NaN, Infinity or overflowing number in the document: json.loads lets them through, JSON does not."""

    def __init__(self, text: str):
        self.text = text


def _finite_float(text: str) -> float | _NotFinite:
    value = float(text)
    return value if math.isfinite(value) else _NotFinite(text)


def _parse(text: str, source: str) -> object:
    if len(text) > MAX_DOCUMENT_BYTES or len(text.encode("utf-8", errors="replace")) > MAX_DOCUMENT_BYTES:
        raise StateError(f"{source}: larger than the limit of {MAX_DOCUMENT_BYTES:,} bytes for a state document")
    try:
        return json.loads(text, parse_constant=_NotFinite, parse_float=_finite_float)
    except RecursionError:
        raise StateError(f"{source}: not JSON (nested too deeply)") from None
    except ValueError as exc:
        raise StateError(f"{source}: not JSON ({exc})") from None


def _json_kind(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, (bool, str, list, dict)):
        return KIND_NAMES[type(value)]
    return "a number" if isinstance(value, (int, float)) else "not a JSON value"


def _holds_nul(value: object) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    return isinstance(value, dict) and any("\x00" in key for key in value)


def _structure_problems(document: object) -> list[str]:
    """Numbers JSON does not allow, NUL characters (PostgreSQL stores none, not even in a lookup) and nesting
    deeper than MAX_DEPTH, each named by where it is."""
    problems = []
    pending: list[tuple[str, object, int]] = [("", document, 0)]
    while pending:
        where, value, depth = pending.pop()
        if isinstance(value, _NotFinite):
            problems.append(f"{where}: {value.text:.40} is not a number JSON allows; give a finite number")
        elif _holds_nul(value):
            problems.append(f"{where or 'the document'}: a NUL character (\\u0000) is not allowed")
        elif depth > MAX_DEPTH:
            problems.append(f"{where}: nested more than {MAX_DEPTH} levels deep")
        elif isinstance(value, dict):
            pending += [(f"{where}.{key}" if where else str(key), item, depth + 1) for key, item in value.items()]
        elif isinstance(value, list):
            pending += [(f"{where}[{index}]", item, depth + 1) for index, item in enumerate(value)]
    return sorted(problems)


def _fits(value: object, kind: type | tuple) -> bool:
    if isinstance(value, bool):
        return kind is bool
    return isinstance(value, kind)


def _shape_problems(record: object, fields: dict, where: str) -> list[str]:
    if not isinstance(record, dict):
        return [f"{where}: expected an object, got {_json_kind(record)}"]
    problems = []
    for name, kind in fields.items():
        if name not in record:
            problems.append(f"{where}: missing field '{name}'")
        elif not _fits(record[name], kind):
            problems.append(f"{where}.{name}: expected {KIND_NAMES.get(kind, 'a number')}, "
                            f"got {_json_kind(record[name])}")
    problems += [f"{where}: unknown field '{name:.60}'" for name in sorted(set(record) - set(fields))]
    return problems


def _repeats(values: list, where: str, what: str) -> list[str]:
    first: dict = {}
    problems = []
    for index, value in enumerate(values):
        if value in first:
            problems.append(f"{where}[{index}]: {what} {value!r:.80} is given twice (also {where}[{first[value]}])")
        first.setdefault(value, index)
    return problems


def _built(model: type[models.Model], key: str, spec: dict, skip: tuple = ()) -> models.Model:
    """The row as the import would leave it: the stored one with the document's values, or a new one."""
    instance = model.objects.filter(**{key: spec[key]}).first() or model(**{key: spec[key]})
    for name, value in spec.items():
        if name not in skip:
            setattr(instance, name, value)
    return instance


def _model_problems(instance: models.Model, where: str) -> list[str]:
    try:
        instance.full_clean()
    except ValidationError as exc:
        return [f"{where}{'' if name == NON_FIELD_ERRORS else '.' + name}: {message}"
                for name, messages in exc.message_dict.items() for message in messages]
    return []


@dataclass
class _Checked:
    """A document that passed every check, with the catalogue rows it would save and its prices and runs as
    their fields store them."""

    document: dict
    annotator_fields: dict
    domain_fields: dict
    domains: list[Domain]
    annotators: list[Annotator]
    prices: list[dict]
    runs: list[dict]
    references: list[dict]


def _catalogue_rows(specs: list, where: str, model: type[models.Model], key: str, fields: dict,
                    skip: tuple = ()) -> tuple[list, list[str]]:
    rows, problems = [], []
    for index, spec in enumerate(specs):
        shape = _shape_problems(spec, fields, f"{where}[{index}]")
        if shape:
            problems += shape
            continue
        row = _built(model, key, spec, skip)
        problems += _model_problems(row, f"{where}[{index}]")
        rows.append(row)
    if not problems:
        problems = _repeats([spec[key] for spec in specs], where, key)
    return rows, problems


def _worker_problems(workers: list, numbers: set[int], slugs: set[str]) -> list[str]:
    problems = []
    for index, worker in enumerate(workers):
        where = f"workers[{index}]"
        shape = _shape_problems(worker, WORKER_FIELDS, where)
        if shape:
            problems += shape
            continue
        if worker["desired_state"] not in DESIRED:
            problems.append(f"{where}.desired_state: expected one of {sorted(DESIRED)}")
        if worker["annotator"] not in numbers:
            problems.append(f"{where}.annotator: no annotator {worker['annotator']} in the document or the console")
        if worker["domain"] not in slugs:
            problems.append(f"{where}.domain: no domain {worker['domain']!r:.80} in the document or the console")
    if not problems:
        problems += _repeats([(w["annotator"], w["domain"]) for w in workers], "workers", "the worker")
    return problems


def _price(record: object, where: str, numbers: set[int], fields: dict) -> tuple[dict, list[str]]:
    problems = _shape_problems(record, fields, where)
    if problems:
        return {}, problems
    price = {"annotator": record["annotator"]}
    if record["annotator"] not in numbers:
        problems.append(f"{where}.annotator: no annotator {record['annotator']} in the document or the console")
    for name in fields:
        if name != "annotator":
            price[name], problem = field_problem(AnnotatorPrice, name, record[name])
            if problem:
                problems.append(f"{where}.{name}: {problem}")
    return price, problems


def _currency_problems(prices: list[dict]) -> list[str]:
    """One currency per annotator, over the document's prices and the console's it keeps: budgets and totals are
    sums in one currency."""
    replaced = {(p["annotator"], p["valid_from"]) for p in prices}
    first: dict[int, tuple[str, str]] = {}
    for number, valid_from, currency in AnnotatorPrice.objects.values_list("annotator__number", "valid_from",
                                                                           "currency"):
        if (number, valid_from) not in replaced:
            first.setdefault(number, (currency, f"its price from {valid_from} in the console"))
    problems = []
    for index, price in enumerate(prices):
        currency, where = first.setdefault(price["annotator"], (price["currency"], f"prices[{index}]"))
        if currency != price["currency"]:
            problems.append(f"prices[{index}].currency: {price['currency']}, but annotator {price['annotator']} has "
                            f"{currency} in {where}: one currency per annotator, so its budget and totals add up")
    return problems


def _price_problems(records: list, numbers: set[int], fields: dict) -> tuple[list[dict], list[str]]:
    prices, problems = [], []
    for index, record in enumerate(records):
        price, found = _price(record, f"prices[{index}]", numbers, fields)
        prices.append(price)
        problems += found
    if problems:
        return prices, problems
    return prices, (_repeats([(p["annotator"], p["valid_from"].isoformat()) for p in prices], "prices",
                             "the price of (annotator, valid_from)") or _currency_problems(prices))


def _run_where(index: int, name: str) -> str:
    return f"runs[{index}]" + (f".{name}" if name else "")


def _run_problems(records: list, numbers: set[int], slugs: set[str]) -> tuple[list[dict], list[str]]:
    runs, problems = [], []
    for index, record in enumerate(records):
        run, found = checked_run(record, lambda name, index=index: _run_where(index, name))
        runs.append(run)
        problems += found
    if problems:
        return runs, problems
    return runs, run_set_problems(runs, _run_where, samples=set(Sample.objects.values_list("external_id", flat=True)),
                                  sample_source="the console", numbers=numbers, slugs=slugs)


def _envelope_problems(document: object) -> list[str]:
    """What must hold before the parts are read: the format, a readable version, JSON-only values, the parts."""
    if not isinstance(document, dict):
        return ["the document is not a JSON object"]
    if document.get("format") != FORMAT:
        return [f"format: expected '{FORMAT}', got {document.get('format')!r:.80}"]
    version = document.get("version")
    if version not in READABLE_VERSIONS or not isinstance(version, int) or isinstance(version, bool):
        readable = ", ".join(map(str, READABLE_VERSIONS[:-1])) + f" and {READABLE_VERSIONS[-1]}"
        return [f"version: this console reads versions {readable}, the file is version {version!r:.80}"]
    problems = _structure_problems(document)
    if problems:
        return problems
    catalogue = document.get("catalogue")
    if not isinstance(catalogue, dict) or not isinstance(catalogue.get("domains"), list) \
            or not isinstance(catalogue.get("annotators"), list):
        return ["catalogue: expected an object with lists 'domains' and 'annotators'"]
    parts = {1: ("workers",), 2: ("workers", "prices", "runs")}.get(version, ("workers", "prices", "runs",
                                                                             "references"))
    return [f"{part}: expected a list" for part in parts if not isinstance(document.get(part), list)]


def _check(document: object) -> tuple[_Checked | None, list[str]]:
    """The document ready to apply, or every problem found, each naming where it is."""
    problems = _envelope_problems(document)
    if problems:
        return None, problems
    catalogue = document["catalogue"]
    annotator_fields = fields_of_version(ANNOTATOR_FIELDS, document["version"])
    domain_fields = fields_of_version(DOMAIN_FIELDS, document["version"])
    domains, domain_problems = _catalogue_rows(catalogue["domains"], "catalogue.domains", Domain, "slug",
                                               domain_fields, skip=("prompt_version",))
    annotators, annotator_problems = _catalogue_rows(catalogue["annotators"], "catalogue.annotators", Annotator,
                                                     "number", annotator_fields)
    if domain_problems or annotator_problems:
        return None, domain_problems + annotator_problems
    numbers = {a.number for a in annotators} | set(Annotator.objects.values_list("number", flat=True))
    slugs = {d.slug for d in domains} | set(Domain.objects.values_list("slug", flat=True))
    prices, price_problems = _price_problems(document.get("prices", []), numbers,
                                             fields_of_version(PRICE_FIELDS, document["version"]))
    runs, run_problems = _run_problems(document.get("runs", []), numbers, slugs)
    references, reference_problems = _reference_problems(document.get("references", []))
    problems = (_worker_problems(document["workers"], numbers, slugs) + price_problems + run_problems
                + reference_problems)
    if problems:
        return None, problems
    return _Checked(document, annotator_fields, domain_fields, domains, annotators, prices, runs, references), []


def _reference_problems(records: list) -> tuple[list[dict], list[str]]:
    """Each set's provenance by the model's own field rules; names given once."""
    references, problems = [], []
    for index, record in enumerate(records):
        where = f"references[{index}]"
        shape = _shape_problems(record, REFERENCE_STATE_FIELDS, where)
        if shape:
            problems += shape
            continue
        values = {"name": record["name"], "sha256": record["sha256"]}
        for name in ("name", *REFERENCE_EDITABLE):
            values[name], problem = field_problem(ReferenceSet, name, record[name])
            if problem:
                problems.append(f"{where}.{name}: {problem}")
        references.append(values)
    if not problems:
        problems = _repeats([r["name"] for r in references], "references", "the reference set")
    return references, problems


def _checked(text: str, source: str) -> _Checked:
    checked, problems = _check(_parse(text, source))
    if problems:
        shown = [f"  - {p}" for p in problems[:MAX_PROBLEMS_SHOWN]]
        if len(problems) > MAX_PROBLEMS_SHOWN:
            shown.append(f"  ... and {len(problems) - MAX_PROBLEMS_SHOWN} more")
        raise StateError(f"{source} is not a valid state export; nothing was changed:\n" + "\n".join(shown))
    return checked


@dataclass
class ImportPlan:
    changes: list[str] = field(default_factory=list)


def _shown(value: object) -> str:
    return repr(str(value) if isinstance(value, Decimal) else value)


def _differences(label: str, current: dict, wanted: dict, fields) -> list[str]:
    return [f"{label}.{name}: {_shown(current[name])} -> {_shown(wanted[name])}" for name in fields
            if current[name] != wanted[name]]


def _catalogue_changes(label: str, model, key: str, fields: dict, specs: list[dict], skip: tuple = ()) -> list[str]:
    changes = []
    for spec in specs:
        current = model.objects.filter(**{key: spec[key]}).values(*fields).first()
        if current is None:
            changes.append(f"{label} {spec[key]}: new")
        else:
            # as the field stores it: a budget given as "20" is the stored Decimal("20.0000")
            wanted = {name: model._meta.get_field(name).to_python(spec[name]) for name in fields}
            changes += _differences(f"{label} {spec[key]}", current, wanted,
                                    [name for name in fields if name not in skip])
    return changes


def _price_changes(prices: list[dict]) -> list[str]:
    changes = []
    for price in prices:
        label = f"price of annotator {price['annotator']} from {price['valid_from']}"
        current = AnnotatorPrice.objects.filter(annotator__number=price["annotator"],
                                                valid_from=price["valid_from"]).values().first()
        changes += [f"{label}: new"] if current is None else _differences(
            label, current, price, [name for name in PRICE_VALUES if name in price])
    return changes


def _run_changes(runs: list[dict]) -> list[str]:
    changes = []
    for run in runs:
        current = Run.objects.filter(name=run["name"]).values(*RUN_EDITABLE).first()
        changes += [f"run {run['name']}: new"] if current is None else _differences(
            f"run {run['name']}", current, run, RUN_EDITABLE)
    return changes


def _reference_changes(references: list[dict]) -> list[str]:
    changes = []
    for reference in references:
        label = f"reference set {reference['name']}"
        current = ReferenceSet.objects.filter(name=reference["name"]).values("sha256", *REFERENCE_EDITABLE).first()
        if current is None:
            changes.append(f"{label}: not in this console, left out (its labels travel in archives: import its file "
                           "or restore an archive)")
        elif current["sha256"] != reference["sha256"]:
            changes.append(f"{label}: the console's set comes from another file, left as it is")
        else:
            changes += _differences(label, current, reference, REFERENCE_EDITABLE)
    return changes


def _plan(checked: _Checked) -> ImportPlan:
    catalogue = checked.document["catalogue"]
    plan = ImportPlan(
        _catalogue_changes("domain", Domain, "slug", checked.domain_fields, catalogue["domains"],
                           skip=("prompt_version",))
        + _catalogue_changes("annotator", Annotator, "number", checked.annotator_fields, catalogue["annotators"])
        + _price_changes(checked.prices) + _run_changes(checked.runs) + _reference_changes(checked.references)
        + [f"annotator {a.number}: stored API key removed (its base URL now points at another host)"
           for a in checked.annotators if a.sends_stored_key_elsewhere()])
    for spec in checked.document["workers"]:
        current = Worker.objects.filter(annotator__number=spec["annotator"], domain__slug=spec["domain"]).first()
        if current is not None and current.desired_state != spec["desired_state"]:
            plan.changes.append(f"worker annotator_{spec['annotator']}_{spec['domain']}: desired "
                                f"{current.desired_state} -> {spec['desired_state']}")
    return plan


def _apply_prices(prices: list[dict]) -> None:
    annotators = dict(Annotator.objects.values_list("number", "pk"))
    for price in prices:
        AnnotatorPrice.objects.update_or_create(
            annotator_id=annotators[price["annotator"]], valid_from=price["valid_from"],
            defaults={name: price[name] for name in PRICE_VALUES if name in price})


def _apply(checked: _Checked) -> None:
    for row in [*checked.domains, *checked.annotators]:
        row.save()
    ensure_worker_rows()
    for spec in checked.document["workers"]:
        Worker.objects.filter(annotator__number=spec["annotator"], domain__slug=spec["domain"]).update(
            desired_state=spec["desired_state"])
    _apply_prices(checked.prices)
    create_runs(checked.runs)
    for run in checked.runs:
        Run.objects.filter(name=run["name"]).update(**{name: run[name] for name in RUN_EDITABLE})
    for reference in checked.references:
        ReferenceSet.objects.filter(name=reference["name"], sha256=reference["sha256"], system=False).update(
            **{name: reference[name] for name in REFERENCE_EDITABLE})


def import_state(text: str, *, source: str, actor: Actor, dry_run: bool = False) -> ImportPlan:
    """Validate the document ``text`` (named ``source`` in messages), then apply it all or not at all. A refused
    import (not a dry run) leaves a failed audit row naming every problem."""
    if dry_run:
        return _plan(_checked(text, source))
    with audited(Action.IMPORT_STATE, actor=actor, target=source, parameters={"characters": len(text)}) as entry:
        checked = _checked(text, source)
        plan = _plan(checked)
        _apply(checked)
        entry.detail = {"changes": plan.changes[:200]}
    return plan
