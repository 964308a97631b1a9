import json
import sys

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from audit.actors import cli_actor
from workers_app.management.cli import input_file
from workers_app.models import ReferenceSet
from workers_app.references.importer import Provenance, delete_reference, import_reference
from workers_app.references.options import ReferenceRefused, layout_from_texts
from workers_app.references.selectors import UnknownReference, reference_by_name, reference_summaries


class Command(BaseCommand):
    help = ("Reference sets: labels taken to be right (experts, crowds), to measure runs against. Import one from a "
            "csv, xlsx or jsonl file (every row checked first; any problem and nothing is imported), list them, or "
            "delete one.")

    def add_arguments(self, parser):
        commands = parser.add_subparsers(dest="command", required=True)
        made = commands.add_parser("import", help="import a reference set (all rows or none; the same import again "
                                                  "changes nothing)")
        made.add_argument("path", type=input_file)
        made.add_argument("--name", required=True, help="the set's name: 1-40 lower-case letters, digits, - or _")
        made.add_argument("--id-column", help="the column (or jsonl key) with the sample id (default: ID, "
                                              "Sample_ID, …): the ids the corpus was imported with")
        made.add_argument("--label-column", action="append", default=[], metavar="DOMAIN=COLUMN",
                          help="wide form: the column holding a domain's labels; repeat for several domains")
        made.add_argument("--domain-column", help="long form (one row per sample and domain): the domain column")
        made.add_argument("--value-column", help="long form: the label column (default: label)")
        made.add_argument("--rater-column", help="the column naming the rater, when items have several raters")
        made.add_argument("--map", action="append", default=[], metavar="DOMAIN:VALUE=CODE",
                          help="the code a file value stands for, e.g. urgency:Supportive=LEVEL_0; repeat")
        made.add_argument("--sheet", action="append", default=[], metavar="NAME",
                          help="xlsx: read only this sheet (repeat for several); default: all")
        made.add_argument("--kind", choices=[k for k, _ in ReferenceSet.Kind.choices], default="expert")
        made.add_argument("--description", default="")
        made.add_argument("--source", default="", help="where the labels come from (a dataset, a DOI)")
        made.add_argument("--licence", default="")
        made.add_argument("--citation", default="", help="the paper to credit wherever the set is used")
        made.add_argument("--raters", type=int, help="how many raters made the labels, as the source says")
        listing = commands.add_parser("list", help="every reference set with its provenance and counts")
        listing.add_argument("--json", action="store_true")
        delete = commands.add_parser("delete", help="delete a reference set and its labels")
        delete.add_argument("name")
        delete.add_argument("--yes", action="store_true", help="confirm")

    def handle(self, *args, command, **options):
        try:
            getattr(self, f"_{command}")(**options)
        except (ReferenceRefused, UnknownReference) as exc:
            raise CommandError(str(exc)) from None

    def _import(self, *, path, name, id_column, label_column, domain_column, value_column, rater_column, map, sheet,
                kind, description, source, licence, citation, raters, **options) -> None:
        layout, value_map = layout_from_texts(id_column=id_column, label_columns=label_column,
                                              domain_column=domain_column, value_column=value_column,
                                              rater_column=rater_column, sheets=sheet, maps=map)
        provenance = Provenance(kind=kind, description=description, source=source, licence=licence,
                                citation=citation, raters=raters)
        with tqdm(unit="row", desc="checking", file=sys.stderr, disable=None) as bar:
            report = import_reference(path, name=name, layout=layout, value_map=value_map, provenance=provenance,
                                      actor=cli_actor(), progress=bar.update)
        self.stdout.write(report.summary())
        for slug, mapped in report.reference_set.value_map.items():
            self.stdout.write(f"  map {slug}: " + ", ".join(f"{value} -> {code}" for value, code in mapped.items()))

    def _list(self, *, json: bool, **options) -> None:
        summaries = reference_summaries()
        if json:
            self.stdout.write(_json([summary.as_dict() for summary in summaries]))
            return
        if not summaries:
            self.stdout.write("no reference sets; import one with: manage.py reference import PATH --name NAME …")
        for summary in summaries:
            found = summary.reference_set
            domains = ", ".join(f"{slug} {n}" for slug, n in summary.domains.items()) or "no labels"
            raters = f", {summary.raters} raters (up to {summary.most_raters_per_item} per item)" \
                if summary.raters else ""
            self.stdout.write(f"{found.name:24} {found.kind:11} {summary.labels:7} labels: {domains}{raters}")
            for label, value in (("source", found.source), ("licence", found.licence),
                                 ("citation", found.citation), ("file", found.file_name)):
                if value:
                    self.stdout.write(f"    {label}: {value}")
            for slug, mapped in found.value_map.items():
                self.stdout.write(f"    map {slug}: " + ", ".join(f"{v} -> {c}" for v, c in mapped.items()))

    def _delete(self, *, name, yes, **options) -> None:
        found = reference_by_name(name)
        if not yes:
            raise CommandError(f"deleting reference set {found.name} deletes its {found.labels.count()} label(s): "
                               "add --yes to confirm")
        self.stdout.write(f"deleted reference set {found.name} and its "
                          f"{delete_reference(found, actor=cli_actor())} label(s)")


def _json(value: object) -> str:
    return json.dumps(value, indent=1, ensure_ascii=False)
