import json
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from admin_ops.services.state import export_state
from audit.actors import cli_actor


class Command(BaseCommand):
    help = "Write the catalogue, worker desired states, progress and a store summary as versioned JSON (no keys)."

    def add_arguments(self, parser):
        parser.add_argument("path")

    def handle(self, *args, path, **options):
        destination = Path(path)
        if not destination.parent.is_dir():
            raise CommandError(f"{path}: the folder {destination.parent} does not exist")
        document = json.loads(export_state(actor=cli_actor(), target=path, destination=destination))
        self.stdout.write(f"wrote {path}: {len(document['workers'])} workers, "
                          f"{len(document['catalogue']['domains'])} domains, "
                          f"{len(document['catalogue']['annotators'])} annotators")
