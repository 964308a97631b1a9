import json

from django.core.management.base import BaseCommand

from admin_ops.services.state import export_state
from audit.actors import cli_actor
from workers_app.management.cli import output_file


class Command(BaseCommand):
    help = ("Write the catalogue (budgets and cache settings too), price versions, run definitions, worker desired "
            "states, progress and a store summary as versioned JSON (no keys).")

    def add_arguments(self, parser):
        parser.add_argument("path", type=output_file())

    def handle(self, *args, path, **options):
        document = json.loads(export_state(actor=cli_actor(), target=str(path), destination=path))
        self.stdout.write(f"wrote {path}: {len(document['workers'])} workers, "
                          f"{len(document['catalogue']['domains'])} domains, "
                          f"{len(document['catalogue']['annotators'])} annotators, {len(document['prices'])} "
                          f"price versions, {len(document['runs'])} runs")
