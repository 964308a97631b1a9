from django.core.management.base import BaseCommand

from admin_ops.services.state import export_state
from workers_app.management.cli import cli_actor


class Command(BaseCommand):
    help = "Write the catalogue, worker desired states, progress and a store summary as versioned JSON (no keys)."

    def add_arguments(self, parser):
        parser.add_argument("path")

    def handle(self, *args, path, **options):
        document = export_state(path, actor=cli_actor())
        self.stdout.write(f"wrote {path}: {len(document['workers'])} workers, "
                          f"{len(document['catalogue']['domains'])} domains, "
                          f"{len(document['catalogue']['annotators'])} annotators")
