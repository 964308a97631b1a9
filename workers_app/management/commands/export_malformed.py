import csv
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from annotation_site.files import atomic_write
from workers_app.models import MalformedAttempt

FIELDS = ["created_at", "sample__external_id", "annotator__number", "domain__slug", "attempt", "reason",
          "reason_detail", "model", "prompt_version", "worker", "raw_answer"]


class Command(BaseCommand):
    help = "Write every malformed answer (also those a retry fixed) to a CSV file."

    def add_arguments(self, parser):
        parser.add_argument("path")

    def handle(self, *args, path, **options):
        target = Path(path)
        if not target.parent.is_dir():
            raise CommandError(f"no folder {target.parent} to write {target.name} into")
        rows = MalformedAttempt.objects.order_by("id").values_list(*FIELDS)

        def write(temp: Path) -> None:
            with temp.open("w", newline="", encoding="utf-8") as handle:
                writer = csv.writer(handle)
                writer.writerow([f.replace("__", "_") for f in FIELDS])
                writer.writerows(rows.iterator(chunk_size=2000))

        atomic_write(target, write)
        self.stdout.write(f"wrote {rows.count()} malformed answer(s) to {target}")
