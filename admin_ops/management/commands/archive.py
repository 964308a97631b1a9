from django.core.management.base import BaseCommand, CommandError

from admin_ops.services.archive import ArchiveError, create_archive
from audit.actors import cli_actor


class Command(BaseCommand):
    help = ("Write DATA_DIR/archives/NAME.tar.gz: runs, workbooks, outcomes, malform log, audit log, state, manifest "
            "(--run RUN: that run's outcomes, malformed attempts and workbooks only).")

    def add_arguments(self, parser):
        parser.add_argument("name")
        parser.add_argument("--run", help="archive only this run (its name)")

    def handle(self, *args, name, run, **options):
        try:
            archive = create_archive(name, actor=cli_actor(), run=run)
        except ArchiveError as exc:
            raise CommandError(str(exc)) from None
        counts = ", ".join(f"{n} {what}" for what, n in archive.counts.items())
        self.stdout.write(f"wrote {archive.file_name} ({archive.size:,} bytes; {counts}); sha256 {archive.sha256}")
