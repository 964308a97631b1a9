from django.core.management.base import BaseCommand

from workers_app.engine.flush import flush_workbook
from workers_app.engine.queues import worker_keys
from workers_app.management.cli import add_scope_arguments, scoped


class Command(BaseCommand):
    help = "Write every stored outcome that a workbook lacks into it (atomically)."

    def add_arguments(self, parser):
        add_scope_arguments(parser)

    def handle(self, *args, **options):
        for key in scoped(worker_keys, options):
            result = flush_workbook(key)
            note = " (rebuilt)" if result.rebuilt else ""
            self.stdout.write(f"{result.worker:32} +{result.added:<6} {result.rows} rows{note}")
