from django.core.management.base import BaseCommand, CommandError

from admin_ops.services.consolidate import consolidate
from audit.actors import cli_actor
from workers_app.management.cli import output_file, run_name
from workers_app.references.selectors import UnknownReference, reference_by_name


class Command(BaseCommand):
    help = ("Write one workbook of a run: its Run sheet (what it came from), a sheet per domain, Summary, Agreement (Krippendorff's alpha with 95 % bootstrap "
            "intervals, kappa matrices), Review and, with a reference set, Quality; plus CSV and JSON-lines copies.")

    def add_arguments(self, parser):
        # .xlsx: the CSV and JSON-lines copies take the same name with their own suffix beside it.
        parser.add_argument("path", nargs="?", type=output_file(".xlsx"),
                            help="default: DATA_DIR/runs/<run>/consolidated/consolidated-<time>.xlsx")
        parser.add_argument("--run", type=run_name, help="the run to consolidate (default: the current run)")
        parser.add_argument("--reference", help="a Quality sheet against this reference set (default: the review "
                                                "queue's adjudicated set, when it has labels)")

    def handle(self, *args, path, run, reference, **options):
        try:
            chosen = reference_by_name(reference) if reference else None
        except UnknownReference as exc:
            raise CommandError(str(exc)) from None
        report = consolidate(path, actor=cli_actor(), run=run, reference=chosen)
        self.stdout.write(f"wrote {report.path} (+ .csv, .jsonl); {report.review} sample(s) on the Review sheet")
        for slug, alphas in report.agreement.items():
            shown = ", ".join(f"{level} {value:.3f}" if value is not None else f"{level} undefined"
                              for level, value in list(alphas.items())[:3])
            self.stdout.write(f"  {slug:12} {shown or 'not applicable (free text)'}")
