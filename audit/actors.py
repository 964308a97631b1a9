"""Who did it: a staff user, a command-line user, or a system component."""

from __future__ import annotations

import getpass
import os
from typing import Any

Actor = Any  # a django User, or a string such as "system:beat"


def actor_name(actor: Actor) -> str:
    if actor is None:
        return "system"
    if isinstance(actor, str):
        return actor
    return actor.get_username()


def cli_actor() -> str:
    """Who runs a management command: the OS user, unless ACTOR names the staff member."""
    return os.environ.get("ACTOR") or f"cli:{getpass.getuser()}"
