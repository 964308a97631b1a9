"""The first staff login: created once, with a password from ADMIN_PASSWORD or generated, shown at once and kept in
DATA_DIR/admin_password (mode 600) so that a run that fails later never loses it."""

from __future__ import annotations

import os
import secrets

from django.conf import settings
from django.contrib.auth import get_user_model

from annotation_site.env import document_env
from annotation_site.files import atomic_write
from audit.actions import Action
from audit.actors import Actor
from audit.services import audited

ADMIN_USERNAME = "admin"
document_env("ADMIN_USERNAME", ADMIN_USERNAME, doc="the first staff login, a superuser made by ./run.sh")
document_env("ADMIN_PASSWORD", "", shown_default="generated, shown once, kept in DATA_DIR/admin_password (mode 600)",
             doc="that login's password; set on a later run, it resets the password")


def _username() -> str:
    return os.environ.get("ADMIN_USERNAME", ADMIN_USERNAME)


def _password_file():
    return settings.DATA_DIR / "admin_password"


def ensure_admin(*, actor: Actor) -> str:
    """Create the superuser if missing (or reset its password from ADMIN_PASSWORD); say how to log in."""
    username, given = _username(), os.environ.get("ADMIN_PASSWORD")
    User = get_user_model()
    user = User.objects.filter(username=username).first()
    if user is not None and not given:
        return admin_login_hint()
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
    if given:
        _password_file().unlink(missing_ok=True)
        return f"Log in as '{username}' (password from ADMIN_PASSWORD)"
    atomic_write(_password_file(), lambda temp: temp.write_text(password + "\n"))  # mkstemp files are mode 600
    return f"Log in as '{username}', password: {password}   (kept in {_password_file()} until you delete it)"


def admin_login_hint() -> str:
    if _password_file().exists():
        return f"Log in as '{_username()}' with the password in {_password_file()} (mode 600)"
    return (f"Log in as '{_username()}' with your password (forgot it? run again with ADMIN_PASSWORD=... to set a "
            "new one)")
