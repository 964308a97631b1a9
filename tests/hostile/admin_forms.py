"""Post an admin change form as a browser would: every field of the object, with some values replaced."""

from __future__ import annotations

import json

from django.db import models
from django.forms.models import model_to_dict


def form_data(obj: models.Model, **changes: object) -> dict:
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
