import csv
from pathlib import Path

from django.core.management.base import BaseCommand

from admin_ops.services.csv_safe import csv_row
from annotation_site.files import atomic_write
from workers_app.management.cli import output_file, run_name
from workers_app.models import MalformedAttempt
from workers_app.runs.current import current_run

FIELDS = ["created_at", "sample__external_id", "annotator__number", "domain__slug", "attempt", "reason",
          "reason_detail", "model", "prompt_version", "worker", "raw_answer"]


class Command(BaseCommand):
    help = "Write every malformed answer of one run (also those a retry fixed) to a CSV file."

    def add_arguments(self, parser):
        parser.add_argument("path", type=output_file())
        parser.add_argument("--run", type=run_name, metavar="NAME", help="the run to export; default: the current run")

    def handle(self, *args, path, run=None, **options):
        run = run or current_run()
        rows = MalformedAttempt.objects.filter(run=run).order_by("id").values_list(*FIELDS)

        def write(temp: Path) -> None:
            with temp.open("w", newline="", encoding="utf-8") as handle:
                writer = csv.writer(handle)
                writer.writerow([f.replace("__", "_") for f in FIELDS])
                # Model answers are untrusted text: a spreadsheet must not run one as a formula.
                writer.writerows(csv_row(row) for row in rows.iterator(chunk_size=2000))

        atomic_write(path, write)
        self.stdout.write(f"wrote {rows.count()} malformed answer(s) of run {run.name} to {path}")
