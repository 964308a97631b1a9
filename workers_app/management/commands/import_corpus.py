import sys
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from audit.actors import cli_actor
from workers_app.importing.readers import count_rows_hint
from workers_app.importing.service import ImportRejected, import_corpus


class Command(BaseCommand):
    help = "Import posts from an xlsx (all or named sheets), csv (UTF-8) or jsonl file. All rows or none."

    def add_arguments(self, parser):
        parser.add_argument("path")
        parser.add_argument("--sheet", action="append", dest="sheets", metavar="NAME",
                            help="read only this sheet (repeat for several); default: all sheets")
        parser.add_argument("--id-column", help="column (or jsonl key) with the sample id; default: ID")
        parser.add_argument("--text-column", help="column (or jsonl key) with the text; default: Text")
        parser.add_argument("--skip-invalid", action="store_true",
                            help="import the valid rows and list the skipped ones instead of refusing the file")
        parser.add_argument("--allow-cut-cells", action="store_true",
                            help="import xlsx texts of exactly 32,767 characters (the cell limit: probably cut "
                                 "when saved) with a warning instead of refusing them")

    def handle(self, *args, path, sheets, id_column, text_column, skip_invalid, allow_cut_cells, **options):
        total = count_rows_hint(Path(path), sheets)
        with tqdm(total=total, unit="row", desc="reading", file=sys.stderr, disable=None) as bar:
            try:
                report = import_corpus(
                    path, actor=cli_actor(), sheets=sheets, id_column=id_column, text_column=text_column,
                    skip_invalid=skip_invalid, allow_cut_cells=allow_cut_cells, progress=bar.update,
                )
            except ImportRejected as exc:
                raise CommandError(str(exc)) from None
        for problem in report.skipped:
            self.stderr.write(f"skipped: {problem}")
        for problem in report.warnings:
            self.stderr.write(f"warning: {problem}")
        self.stdout.write(report.summary())
