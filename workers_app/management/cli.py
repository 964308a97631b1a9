"""What every management command shares."""

from __future__ import annotations

import getpass
import os


def cli_actor() -> str:
    """Who runs a command: the OS user, unless ACTOR names the staff member."""
    return os.environ.get("ACTOR") or f"cli:{getpass.getuser()}"
