from django.core.management.base import BaseCommand

from audit.actors import cli_actor
from workers_app.catalogue_defaults import seed_defaults


class Command(BaseCommand):
    help = ("Create the default domains, built-in annotators and beat schedules that are missing. "
            "Safe to run again.")

    def handle(self, *args, **options):
        created = seed_defaults(actor=cli_actor())
        if any(created.values()):
            self.stdout.write(f"Created {created['domains']} domain(s), {created['annotators']} annotator(s) and "
                              f"{created['schedules']} beat schedule(s).")
        else:
            self.stdout.write("The catalogue is already there; nothing changed.")
