"""What the management commands share: argument types that refuse a bad value by name before anything runs, and
engine calls scoped to some workers."""

from __future__ import annotations

import re
from argparse import ArgumentTypeError
from collections.abc import Callable
from pathlib import Path

from django.core.exceptions import ValidationError
from django.core.management.base import CommandError

from workers_app.engine.queues import UnknownWorker
from workers_app.models import Annotator, Run

# ASCII digits only: str.isdigit() and int() also take '²' or Arabic-Indic digits.
NUMBER = re.compile(r"[0-9]{1,9}")
WORKER = re.compile(r"([0-9]{1,9}):(.+)")


def annotator_number(text: str) -> int:
    """An argparse type: an annotator number within the model's own bounds."""
    if not NUMBER.fullmatch(text):
        raise ArgumentTypeError(f"expected an annotator number such as 2, got {text!r:.40}")
    number = int(text)
    try:
        Annotator._meta.get_field("number").run_validators(number)
    except ValidationError as exc:
        raise ArgumentTypeError(f"annotator {number}: {' '.join(exc.messages)}") from None
    return number


def worker_option(text: str) -> tuple[int, str]:
    """An argparse type: N:DOMAIN, e.g. 2:urgency."""
    match = WORKER.fullmatch(text)
    if not match:
        raise ArgumentTypeError(f"--worker takes N:DOMAIN, e.g. 2:urgency (got {text!r:.60})")
    return annotator_number(match.group(1)), match.group(2)


def input_file(text: str) -> Path:
    """An argparse type: a file that exists (not a folder)."""
    path = Path(text)
    if not path.is_file():
        raise ArgumentTypeError(f"{text}: {'not a file' if path.exists() else 'no such file'}")
    return path


def output_file(suffix: str = "") -> Callable[[str], Path]:
    """An argparse type: a file to write, in a folder that exists, not a folder itself, ending in ``suffix``."""

    def checked(text: str) -> Path:
        path = Path(text)
        if path.is_dir():
            raise ArgumentTypeError(f"{text}: is a folder; give a file name")
        if not path.parent.is_dir():
            raise ArgumentTypeError(f"{text}: the folder {path.parent} does not exist")
        if suffix and path.suffix.lower() != suffix:
            raise ArgumentTypeError(f"{text}: give a file name ending in {suffix}")
        return path

    return checked


def add_scope_arguments(parser) -> None:
    parser.add_argument("--annotator", type=annotator_number, metavar="N", help="only this annotator's workers")
    parser.add_argument("--domain", metavar="NAME", help="only this domain's workers")


def scoped(function, options: dict, **kwargs):
    """Call an engine function for the chosen workers, turning an unknown name into a clean CLI error."""
    try:
        return function(annotator=options.get("annotator"), domain=options.get("domain"), **kwargs)
    except UnknownWorker as exc:
        raise CommandError(str(exc)) from None


def run_name(text: str) -> Run:
    """An argparse type: the name of a run that exists."""
    run = Run.objects.filter(name=text).first()
    if run is None:
        known = ", ".join(Run.objects.order_by("name").values_list("name", flat=True)) or "none"
        raise ArgumentTypeError(f"no run named {text!r:.50}; the runs are {known}")
    return run
