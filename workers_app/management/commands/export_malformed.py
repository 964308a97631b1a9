import csv
from pathlib import Path

from django.core.management.base import BaseCommand

from admin_ops.services.csv_safe import csv_row
from annotation_site.files import atomic_write
from workers_app.management.cli import output_file
from workers_app.models import MalformedAttempt

FIELDS = ["created_at", "sample__external_id", "annotator__number", "domain__slug", "attempt", "reason",
          "reason_detail", "model", "prompt_version", "worker", "raw_answer"]


class Command(BaseCommand):
    help = "Write every malformed answer (also those a retry fixed) to a CSV file."

    def add_arguments(self, parser):
        parser.add_argument("path", type=output_file())

    def handle(self, *args, path, **options):
        rows = MalformedAttempt.objects.order_by("id").values_list(*FIELDS)

        def write(temp: Path) -> None:
            with temp.open("w", newline="", encoding="utf-8") as handle:
                writer = csv.writer(handle)
                writer.writerow([f.replace("__", "_") for f in FIELDS])
                # Model answers are untrusted text: a spreadsheet must not run one as a formula.
                writer.writerows(csv_row(row) for row in rows.iterator(chunk_size=2000))

        atomic_write(path, write)
        self.stdout.write(f"wrote {rows.count()} malformed answer(s) to {path}")
