from django.core.management.base import BaseCommand

from workers_app.engine.queues import sync_checkpoints
from workers_app.management.cli import add_scope_arguments, scoped


class Command(BaseCommand):
    help = "Rebuild the Redis progress counters and queued sets from the store and the queues."

    def add_arguments(self, parser):
        add_scope_arguments(parser)

    def handle(self, *args, **options):
        for worker, counts in scoped(sync_checkpoints, options).items():
            self.stdout.write(f"{worker:32} ok {counts['ok']:6}  malformed {counts['malformed']:5}  "
                              f"queued {counts['queued']:6}")
