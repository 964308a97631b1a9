import csv
import os
import tempfile
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

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
        fd, temp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
        count = 0
        with os.fdopen(fd, "w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow([f.replace("__", "_") for f in FIELDS])
            for row in rows.iterator(chunk_size=2000):
                writer.writerow(row)
                count += 1
        os.replace(temp, target)
        self.stdout.write(f"wrote {count} malformed answer(s) to {target}")
