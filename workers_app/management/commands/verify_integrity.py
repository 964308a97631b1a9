import json

from django.core.management.base import BaseCommand

from workers_app.engine.integrity import as_dicts, verify_integrity
from workers_app.management.cli import add_scope_arguments, scoped


class Command(BaseCommand):
    help = "Compare, per worker, the store with its workbook and Redis counters; repair what is derivable."

    def add_arguments(self, parser):
        add_scope_arguments(parser)
        parser.add_argument("--json", action="store_true", help="print the report as JSON")
        parser.add_argument("--no-repair", action="store_true", help="only report")

    def handle(self, *args, **options):
        reports = scoped(verify_integrity, options, repair=not options["no_repair"])
        if options["json"]:
            self.stdout.write(json.dumps(as_dicts(reports), indent=2))
        else:
            for r in reports:
                state = "ok" if not r.problems else ("repaired" if r.ok else "MISMATCH")
                self.stdout.write(f"{r.worker:32} {state:9} store {r.stored:6}  workbook {r.workbook_rows}")
                for problem in r.problems:
                    self.stdout.write(f"    - {problem}")
                for fix in r.repaired:
                    self.stdout.write(f"    + {fix}")
        if not all(r.ok for r in reports):
            raise SystemExit(1)
