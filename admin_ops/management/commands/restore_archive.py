from django.core.management.base import BaseCommand, CommandError

from admin_ops.services.archive import ArchiveError
from admin_ops.services.restore import RestoreConflict, restore_archive
from audit.actors import cli_actor
from workers_app.management.cli import input_file


class Command(BaseCommand):
    help = "Verify an archive, then restore what the store and the workbooks lack (--dry-run: only say what)."

    def add_arguments(self, parser):
        parser.add_argument("path", type=input_file)
        parser.add_argument("--dry-run", action="store_true")

    def handle(self, *args, path, dry_run, **options):
        try:
            plan = restore_archive(path, actor=cli_actor(), dry_run=dry_run)
        except (ArchiveError, RestoreConflict) as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(("Would restore " if dry_run else "Restored ") + plan.summary())
        for name in plan.workbooks:
            self.stdout.write(f"  workbook {name}")
