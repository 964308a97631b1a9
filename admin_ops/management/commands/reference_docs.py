from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from admin_ops.management.reference_docs import reference_dir, stale_pages, write_pages


class Command(BaseCommand):
    help = ("Write the reference pages made from the code: docs/reference/settings.md (every environment variable), "
            "commands.md (every management command of ours) and openapi.yaml (the API's schema).")

    def add_arguments(self, parser):
        parser.add_argument("--check", action="store_true",
                            help="write nothing; exit 1 naming each page that differs from what the code gives")
        parser.add_argument("--dir", dest="folder", type=Path, help="the folder of the pages (default: docs/reference)")

    def handle(self, *args, check, folder, **options):
        folder = folder or reference_dir()
        if check:
            stale = stale_pages(folder)
            if stale:
                raise CommandError("stale: " + ", ".join(str(path) for path in stale)
                                   + " (run: .venv/bin/python manage.py reference_docs)")
            self.stdout.write(f"the reference pages in {folder} match the code")
            return
        for path in write_pages(folder):
            self.stdout.write(f"wrote {path}")
