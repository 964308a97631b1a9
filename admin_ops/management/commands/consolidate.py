from django.core.management.base import BaseCommand

from admin_ops.services.consolidate import consolidate
from audit.actors import cli_actor
from workers_app.management.cli import output_file, run_name


class Command(BaseCommand):
    help = ("Write one workbook of a run: its Run sheet (what it came from), a sheet per domain, Summary, Agreement (Krippendorff's alpha with 95 % bootstrap "
            "intervals, kappa matrices) and Review; plus CSV and JSON-lines copies.")

    def add_arguments(self, parser):
        # .xlsx: the CSV and JSON-lines copies take the same name with their own suffix beside it.
        parser.add_argument("path", nargs="?", type=output_file(".xlsx"),
                            help="default: DATA_DIR/runs/<run>/consolidated/consolidated-<time>.xlsx")
        parser.add_argument("--run", type=run_name, help="the run to consolidate (default: the current run)")

    def handle(self, *args, path, run, **options):
        report = consolidate(path, actor=cli_actor(), run=run)
        self.stdout.write(f"wrote {report.path} (+ .csv, .jsonl); {report.review} sample(s) on the Review sheet")
        for slug, alphas in report.agreement.items():
            shown = ", ".join(f"{level} {value:.3f}" if value is not None else f"{level} undefined"
                              for level, value in list(alphas.items())[:3])
            self.stdout.write(f"  {slug:12} {shown or 'not applicable (free text)'}")
