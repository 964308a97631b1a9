"""One value checked by the rules of the model field that will store it: what archives and state documents share."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db import models


def stored_value(field: models.Field, raw: object) -> object:
    """``raw`` as the field stores it, by the field's own rules (type, choices, length, range). Unlike a form it
    takes empty text where the field's default is empty text: stored rows hold such values."""
    value = field.to_python(raw)
    if value is None and not field.null:
        raise ValidationError(field.error_messages["null"], code="null")
    if value not in field.empty_values:
        field.validate(value, None)
    field.run_validators(value)
    return value


def field_problem(model: type[models.Model], name: str, raw: object) -> tuple[object, str]:
    """The stored value of ``raw`` for ``model.name`` and an empty text, or None and why it cannot be stored."""
    try:
        return stored_value(model._meta.get_field(name), raw), ""
    except ValidationError as exc:
        return None, " ".join(exc.messages)
