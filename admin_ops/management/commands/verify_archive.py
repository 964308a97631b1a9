from django.core.management.base import BaseCommand, CommandError

from admin_ops.services.archive import verify_archive
from workers_app.management.cli import input_file


class Command(BaseCommand):
    help = "Recompute every member's SHA-256 against the archive's manifest and report each mismatch."

    def add_arguments(self, parser):
        parser.add_argument("path", type=input_file)

    def handle(self, *args, path, **options):
        result = verify_archive(path)
        if not result.ok:
            raise CommandError(f"{path} failed verification:\n" + "\n".join(f"  - {p}" for p in result.problems))
        scope = f", run {result.manifest['run']} only" if result.manifest.get("run") else ""
        self.stdout.write(f"{path} (version {result.manifest['version']}{scope}): "
                          f"{len(result.manifest['members'])} members, every checksum matches")
