"""What the workers_app management commands share."""

from __future__ import annotations

from django.core.management.base import CommandError

from workers_app.engine.queues import UnknownWorker


def add_scope_arguments(parser) -> None:
    parser.add_argument("--annotator", type=int, metavar="N", help="only this annotator's workers")
    parser.add_argument("--domain", metavar="NAME", help="only this domain's workers")


def scoped(function, options: dict, **kwargs):
    """Call an engine function for the chosen workers, turning an unknown name into a clean CLI error."""
    try:
        return function(annotator=options.get("annotator"), domain=options.get("domain"), **kwargs)
    except UnknownWorker as exc:
        raise CommandError(str(exc)) from None
