from django.core.management.base import BaseCommand

from admin_ops.services.roles import seed_roles
from audit.actors import cli_actor
from workers_app.catalogue_defaults import seed_defaults


class Command(BaseCommand):
    help = ("Create the default domains, built-in annotators, beat schedules and staff roles (viewer, reviewer, "
            "operator groups) that are missing. Safe to run again.")

    def handle(self, *args, **options):
        created = seed_defaults(actor=cli_actor())
        if any(created.values()):
            self.stdout.write(f"Created {created['domains']} domain(s), {created['annotators']} annotator(s) and "
                              f"{created['schedules']} beat schedule(s).")
        else:
            self.stdout.write("The catalogue is already there; nothing changed.")
        roles = seed_roles(actor=cli_actor())
        if roles:
            self.stdout.write(f"Created the staff role group(s): {', '.join(roles)}.")
