"""The first staff login: created once, with a password from ADMIN_PASSWORD or generated and shown once."""

from __future__ import annotations

import os
import secrets

from django.contrib.auth import get_user_model

from audit.actions import Action
from audit.actors import Actor
from audit.services import audited


def ensure_admin(*, actor: Actor) -> str:
    """Create the superuser if missing (or reset its password from ADMIN_PASSWORD); say how to log in."""
    username = os.environ.get("ADMIN_USERNAME", "admin")
    given = os.environ.get("ADMIN_PASSWORD")
    User = get_user_model()
    user = User.objects.filter(username=username).first()
    if user is not None and not given:
        return (f"Log in as '{username}' with the password shown on the first run "
                "(forgot it? run again with ADMIN_PASSWORD=... to set a new one).")
    password = given or secrets.token_urlsafe(12)
    with audited(Action.ENSURE_ADMIN, actor=actor, target=username,
                 parameters={"password_from_env": bool(given)}) as entry:
        if user is None:
            User.objects.create_superuser(username=username, email="", password=password)
            entry.detail = {"created": True}
        else:
            user.set_password(password)
            user.save(update_fields=["password"])
            entry.detail = {"password_reset": True}
    shown = "(from ADMIN_PASSWORD)" if given else f"password: {password}   <- shown once; keep it"
    return f"Log in as '{username}'  {shown}"
