from django.core.management.base import BaseCommand, CommandError

from admin_ops.services.reset import ResetRefused, preview_reset, reset_data
from audit.actors import cli_actor
from workers_app.engine.queues import UnknownWorker
from workers_app.management.cli import annotator_number


class Command(BaseCommand):
    help = ("Stop the affected workers, purge their queues and Redis state, archive first, delete their outcomes "
            "and workbooks, and leave them stopped.")

    def add_arguments(self, parser):
        parser.add_argument("--domain", metavar="NAME")
        parser.add_argument("--annotator", type=annotator_number, metavar="N")
        parser.add_argument("--factory", action="store_true", help="everything: all outcomes, samples and corpora")
        parser.add_argument("--no-backup", action="store_true", help="do not archive first")
        parser.add_argument("--keep-excel", action="store_true", help="keep the workbooks")
        parser.add_argument("--yes", action="store_true", help="do not ask for confirmation")

    def handle(self, *args, domain, annotator, factory, no_backup, keep_excel, yes, **options):
        try:
            preview = preview_reset(annotator=annotator, domain=domain, factory=factory)
            self.stdout.write(f"This deletes {preview.summary()}.")
            self.stdout.write("An archive is made first." if not no_backup else "NO archive will be made "
                              "(--no-backup).")
            if not yes and input("Type 'yes' to go on: ").strip() != "yes":
                raise CommandError("not confirmed; nothing was changed")
            report = reset_data(actor=cli_actor(), annotator=annotator, domain=domain, factory=factory,
                                backup=not no_backup, keep_excel=keep_excel)
        except (ResetRefused, UnknownWorker) as exc:
            raise CommandError(str(exc)) from None
        archived = f" (archived first as {report.archive})" if report.archive else ""
        self.stdout.write(f"Reset {report.scope}{archived}; purged {report.purged} message(s). Workers left stopped.")
