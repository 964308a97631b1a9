"""Export and import of the console's state: catalogue, worker desired states, progress and a store summary.

A versioned JSON document. Import validates the whole document first (schema and version), shows what would
change, and changes nothing on any error. API keys are never in it: annotators carry the NAME of their key's
environment variable only.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from annotation_site.files import atomic_write
from audit.actions import Action
from audit.actors import Actor
from audit.services import audited
from workers_app.fleet.rows import ensure_worker_rows
from workers_app.models import Annotator, Domain, Worker

from ..selectors import ANNOTATOR_FIELDS, DOMAIN_FIELDS, FORMAT, VERSION, state_document

DESIRED = {choice for choice, _ in Worker.Desired.choices}


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


def _check_fields(record: object, fields: dict, where: str, problems: list[str]) -> None:
    if not isinstance(record, dict):
        problems.append(f"{where}: expected an object")
        return
    for name, kind in fields.items():
        if name not in record:
            problems.append(f"{where}: missing field '{name}'")
        elif not isinstance(record[name], kind) or (kind is int and isinstance(record[name], bool)):
            problems.append(f"{where}.{name}: expected {getattr(kind, '__name__', 'a number')}")
    for name in set(record) - set(fields):
        problems.append(f"{where}: unknown field '{name}'")


def validate(document: object) -> list[str]:
    if not isinstance(document, dict):
        return ["the document is not a JSON object"]
    if document.get("format") != FORMAT:
        return [f"format: expected '{FORMAT}', got {document.get('format')!r}"]
    if document.get("version") != VERSION:
        return [f"version: this console reads version {VERSION}, the file is version {document.get('version')!r}"]
    problems: list[str] = []
    catalogue = document.get("catalogue")
    if not isinstance(catalogue, dict) or not isinstance(catalogue.get("domains"), list) \
            or not isinstance(catalogue.get("annotators"), list):
        return ["catalogue: expected an object with lists 'domains' and 'annotators'"]
    for index, domain in enumerate(catalogue["domains"]):
        _check_fields(domain, DOMAIN_FIELDS, f"catalogue.domains[{index}]", problems)
    for index, annotator in enumerate(catalogue["annotators"]):
        _check_fields(annotator, ANNOTATOR_FIELDS, f"catalogue.annotators[{index}]", problems)
    workers = document.get("workers")
    if not isinstance(workers, list):
        return [*problems, "workers: expected a list"]
    for index, worker in enumerate(workers):
        _check_fields(worker, {"annotator": int, "domain": str, "desired_state": str}, f"workers[{index}]", problems)
        if isinstance(worker, dict) and worker.get("desired_state") not in DESIRED:
            problems.append(f"workers[{index}].desired_state: expected one of {sorted(DESIRED)}")
    return problems


@dataclass
class ImportPlan:
    changes: list[str] = field(default_factory=list)


def _catalogue_changes(label: str, model, key: str, fields: dict, specs: list[dict], skip: tuple = ()) -> list[str]:
    changes = []
    for spec in specs:
        current = model.objects.filter(**{key: spec[key]}).values(*fields).first()
        if current is None:
            changes.append(f"{label} {spec[key]}: new")
        else:
            changes += [f"{label} {spec[key]}.{f}: {current[f]!r} -> {spec[f]!r}" for f in fields
                        if f not in skip and current[f] != spec[f]]
    return changes


def _plan(document: dict) -> ImportPlan:
    catalogue = document["catalogue"]
    plan = ImportPlan(
        _catalogue_changes("domain", Domain, "slug", DOMAIN_FIELDS, catalogue["domains"], skip=("prompt_version",))
        + _catalogue_changes("annotator", Annotator, "number", ANNOTATOR_FIELDS, catalogue["annotators"]))
    for spec in document["workers"]:
        current = Worker.objects.filter(annotator__number=spec["annotator"], domain__slug=spec["domain"]).first()
        if current is not None and current.desired_state != spec["desired_state"]:
            plan.changes.append(f"worker annotator_{spec['annotator']}_{spec['domain']}: desired "
                                f"{current.desired_state} -> {spec['desired_state']}")
    return plan


def _apply(document: dict) -> None:
    for spec in document["catalogue"]["domains"]:
        values = {f: v for f, v in spec.items() if f not in ("slug", "prompt_version")}
        domain = Domain.objects.filter(slug=spec["slug"]).first() or Domain(slug=spec["slug"])
        for name, value in values.items():
            setattr(domain, name, value)
        domain.save()
    for spec in document["catalogue"]["annotators"]:
        Annotator.objects.update_or_create(number=spec["number"], defaults={f: v for f, v in spec.items()
                                                                             if f != "number"})
    ensure_worker_rows()
    for spec in document["workers"]:
        Worker.objects.filter(annotator__number=spec["annotator"], domain__slug=spec["domain"]).update(
            desired_state=spec["desired_state"])


def import_state(text: str, *, source: str, actor: Actor, dry_run: bool = False) -> ImportPlan:
    """Validate the document ``text`` (named ``source`` in messages), then apply it all or not at all."""
    try:
        document = json.loads(text)
    except ValueError as exc:
        raise StateError(f"{source}: not JSON ({exc})") from None
    problems = validate(document)
    if problems:
        raise StateError(f"{source} is not a valid state export; nothing was changed:\n"
                         + "\n".join(f"  - {p}" for p in problems))
    plan = _plan(document)
    if dry_run:
        return plan
    with audited(Action.IMPORT_STATE, actor=actor, target=source, parameters={"changes": len(plan.changes)}) \
            as entry:
        _apply(document)
        entry.detail = {"changes": plan.changes[:200]}
    return plan
