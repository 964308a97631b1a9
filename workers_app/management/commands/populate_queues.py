from django.core.management.base import BaseCommand

from workers_app.engine.queues import populate_queues
from workers_app.management.cli import add_scope_arguments, scoped


class Command(BaseCommand):
    help = "Queue every sample that has no stored outcome and no waiting message. Safe to run again."

    def add_arguments(self, parser):
        add_scope_arguments(parser)

    def handle(self, *args, **options):
        queued = scoped(populate_queues, options)
        for worker, count in queued.items():
            self.stdout.write(f"{worker:32} queued {count}")
        self.stdout.write(f"{sum(queued.values())} message(s) queued for {len(queued)} worker(s).")
