import json
import sys

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from audit.actors import cli_actor
from workers_app.baselines.services import MAX_FOLDS, MIN_FOLDS, BaselineRefused, train_baseline, training_plan
from workers_app.management.cli import annotator_number
from workers_app.models import Annotator, TrainedBaseline
from workers_app.references.selectors import UnknownReference, reference_by_name

FIGURES = (("accuracy", "accuracy"), ("macro_f1", "macro-F1"), ("kappa", "kappa"))


def _shown(estimate: dict) -> str:
    value, (low, high) = estimate["value"], estimate["ci95"]
    if value is None:
        return "—"
    return f"{value:.3f}" if low is None else f"{value:.3f} [{low:.3f}, {high:.3f}]"


def baseline_document(row: TrainedBaseline) -> dict:
    return {"annotator": row.annotator.number, "version": row.version, "reference": row.reference_name,
            "folds": row.folds, "domains": row.domains, "skipped": row.skipped, "file": row.file_name,
            "sha256": row.sha256, "size": row.size, "seconds": row.seconds, "trained_by": row.trained_by,
            "created_at": row.created_at.isoformat()}


class Command(BaseCommand):
    help = ("The trained baseline annotator: learn a reference set (TF-IDF + logistic regression, one model per "
            "domain) as an annotator's next model version, with its k-fold cross-validated quality on that set; or "
            "show an annotator's versions. An annotator answers with its model once its backend is 'trained'.")

    def add_arguments(self, parser):
        commands = parser.add_subparsers(dest="command", required=True)
        train = commands.add_parser("train", help="learn a reference set as the annotator's next version")
        train.add_argument("--annotator", type=annotator_number, required=True, metavar="N")
        train.add_argument("--reference", required=True, help="the reference set's name (manage.py reference list)")
        train.add_argument("--folds", type=int, default=5,
                           help=f"cross-validation folds, {MIN_FOLDS} to {MAX_FOLDS} (default 5)")
        train.add_argument("--json", action="store_true", help="the stored version as JSON")
        show = commands.add_parser("show", help="an annotator's trained versions, newest first")
        show.add_argument("--annotator", type=annotator_number, required=True, metavar="N")
        show.add_argument("--json", action="store_true")

    def handle(self, *args, command, annotator, json: bool, **options):
        found = Annotator.objects.filter(number=annotator).first()
        if found is None:
            known = ", ".join(map(str, Annotator.objects.values_list("number", flat=True))) or "none"
            raise CommandError(f"no annotator {annotator}; the annotators are {known}")
        try:
            getattr(self, f"_{command}")(found, as_json=json, **options)
        except (BaselineRefused, UnknownReference) as exc:
            raise CommandError(str(exc)) from None

    def _train(self, annotator: Annotator, *, reference: str, folds: int, as_json: bool, **options) -> None:
        reference_set = reference_by_name(reference)
        plan = training_plan(reference_set)
        with tqdm(total=plan.fits(folds), unit="fit", desc=f"training annotator {annotator.number}",
                  file=sys.stderr, disable=None) as bar:
            row = train_baseline(annotator, reference_set, actor=cli_actor(), folds=folds, progress=bar.update,
                                 plan=plan)
        if as_json:
            self.stdout.write(_json(baseline_document(row)))
            return
        self.stdout.write(f"annotator {annotator.number}: trained baseline version {row.version} from reference set "
                          f"{row.reference_name} in {row.seconds:.1f} s; {row.folds}-fold cross-validated on it:")
        self._figures(row)
        if annotator.backend != Annotator.Backend.TRAINED:
            self.stdout.write(f"  annotator {annotator.number} answers with its {annotator.backend} backend: set its "
                              "backend to 'trained' for this model to answer")

    def _show(self, annotator: Annotator, *, as_json: bool, **options) -> None:
        rows = list(annotator.baselines.select_related("annotator").order_by("-version"))
        if as_json:
            self.stdout.write(_json({"annotator": annotator.number, "backend": annotator.backend,
                                     "current_version": annotator.baseline_version,
                                     "versions": [baseline_document(row) for row in rows]}))
            return
        if not rows:
            self.stdout.write(f"annotator {annotator.number} has no trained baseline; train one with: manage.py "
                              f"baseline train --annotator {annotator.number} --reference NAME")
            return
        self.stdout.write(f"annotator {annotator.number} ({annotator.backend} backend), current version "
                          f"{annotator.baseline_version}")
        for row in rows:
            self.stdout.write(f"version {row.version}: reference set {row.reference_name}, {row.folds} folds, trained "
                              f"by {row.trained_by} on {row.created_at:%Y-%m-%d %H:%M}, {row.size:,} bytes "
                              f"({row.file_name})")
            self._figures(row)

    def _figures(self, row: TrainedBaseline) -> None:
        for slug, found in row.domains.items():
            figures = "; ".join(f"{label} {_shown(found[name])}" for name, label in FIGURES)
            self.stdout.write(f"  {slug}: {found['items']} items, {len(found['classes'])} classes; {figures} "
                              f"(kappa {found['kappa_weights']}; 95 % bootstrap intervals)")
        for slug, why in row.skipped.items():
            self.stdout.write(f"  {slug}: not learned ({why})")


def _json(value: object) -> str:
    return json.dumps(value, indent=1, ensure_ascii=False)
