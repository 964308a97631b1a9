"""Saving an annotator's settings: one audited service for the admin, the workspace and any later API.

The key rules apply wherever settings are saved: a typed key must look like one, and a stored key does not follow a
base URL to another server unless it is typed again (``moved_key_problem``)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from django.core.exceptions import ValidationError

from audit.actions import Action
from audit.actors import Actor
from audit.services import audited
from workers_app.engine.api_keys import clear_api_key, set_api_key
from workers_app.models import Annotator, AnnotatorPrice
from workers_app.models.key_rules import key_value_problem, moved_key_problem


@dataclass(frozen=True)
class NewPrice:
    """A price version: the price of 1,000 tokens in and out from ``valid_from`` on."""

    valid_from: date
    input_per_1k: Decimal
    output_per_1k: Decimal
    currency: str


@dataclass(frozen=True)
class KeyChange:
    """What happens to the stored key: ``new`` replaces it, ``remove`` deletes it, neither keeps it."""

    new: str = ""
    remove: bool = False

    def describe(self) -> str:
        return "replaced" if self.new else "removed" if self.remove else "kept"


def key_problems(annotator: Annotator, change: KeyChange) -> dict[str, str]:
    """The key rules for saving ``annotator`` (its unsaved settings) with ``change``, by form field."""
    if change.new:
        problem = key_value_problem(change.new)
        return {"api_key": problem} if problem else {}
    stored = Annotator.objects.filter(pk=annotator.pk).values("base_url", "api_key_encrypted").first() \
        if annotator.pk else None
    if stored and stored["api_key_encrypted"] and not change.remove:
        problem = moved_key_problem(stored["base_url"], annotator.base_url)
        if problem:
            return {"base_url": problem}
    return {}


def save_annotator(annotator: Annotator, *, changed: list[str], key: KeyChange = KeyChange(),
                   price: NewPrice | None = None, actor: Actor, client_address: str | None = None) -> Annotator:
    """Validate and save ``annotator`` (settings already set on it), its key change and a new price version, all or
    nothing. The audit row names the fields that changed and what happened to the key, never a value of it."""
    parameters = {"fields": sorted(changed), "key": key.describe(),
                  "price": None if price is None else {"valid_from": price.valid_from.isoformat(),
                                                       "currency": price.currency}}
    with audited(Action.CHANGE_ANNOTATOR, actor=actor, target=str(annotator), parameters=parameters,
                 client_address=client_address):
        problems = key_problems(annotator, key)
        if problems:
            raise ValidationError(problems)
        annotator.full_clean()
        new_price = None
        if price is not None:
            new_price = AnnotatorPrice(annotator=annotator, valid_from=price.valid_from,
                                       input_per_1k=price.input_per_1k, output_per_1k=price.output_per_1k,
                                       currency=price.currency)
            new_price.full_clean()
        annotator.save()
        if new_price is not None:
            new_price.save()
        if key.new:
            set_api_key(annotator, key.new, actor=actor)
        elif key.remove:
            clear_api_key(annotator, actor=actor)
    return annotator
