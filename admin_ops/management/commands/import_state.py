from django.core.management.base import BaseCommand, CommandError

from admin_ops.services.state import StateError, import_state, read_document
from audit.actors import cli_actor
from workers_app.management.cli import input_file


class Command(BaseCommand):
    help = "Validate a state export, show what would change, and apply it (all or nothing)."

    def add_arguments(self, parser):
        parser.add_argument("path", type=input_file)
        parser.add_argument("--dry-run", action="store_true", help="only show the differences")

    def handle(self, *args, path, dry_run, **options):
        try:
            with path.open("rb") as handle:
                text = read_document(handle, source=path.name)
        except (OSError, StateError) as exc:
            raise CommandError(f"path: {exc}") from None
        try:
            plan = import_state(text, source=path.name, actor=cli_actor(), dry_run=dry_run)
        except StateError as exc:
            raise CommandError(str(exc)) from None
        for change in plan.changes:
            self.stdout.write(f"  {change}")
        verb = "would change" if dry_run else "changed"
        self.stdout.write(f"{len(plan.changes)} difference(s); {verb}." if plan.changes else "No differences.")
