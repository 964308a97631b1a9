import json

from django.core.management.base import BaseCommand, CommandError

from workers_app.management.cli import run_name
from workers_app.references.quality import quality_document, run_quality
from workers_app.references.selectors import UnknownReference, reference_by_name
from workers_app.runs.current import current_run


def _shown(estimate) -> str:
    if estimate.value is None:
        return "—"
    if estimate.ci95.low is None:
        return f"{estimate.value:.3f}"
    return f"{estimate.value:.3f} [{estimate.ci95.low:.3f}, {estimate.ci95.high:.3f}]"


class Command(BaseCommand):
    help = ("The quality of a run's labels against a reference set: per domain and annotator, and for the "
            "annotators' majority vote and a Dawid–Skene consensus, n, accuracy, macro-F1, Cohen's kappa "
            "(quadratic for ordinal domains, MASI for code sets), the share malformed or refused, each with a 95 % "
            "bootstrap interval; the Alternative Annotator Test where the set has 3+ raters per item; a calibration table "
            "(reliability bins, expected calibration error) for annotators whose labels have confidences.")
    # A read of the store: the system checks (which load every URL, view and admin page) would be most of its time.
    requires_system_checks = []

    def add_arguments(self, parser):
        parser.add_argument("--run", type=run_name, help="default: the current run")
        parser.add_argument("--reference", required=True, help="the reference set's name (manage.py reference list)")
        parser.add_argument("--bootstrap", type=int, default=1000, help="resamples for the intervals (default 1000)")
        parser.add_argument("--epsilon", type=float,
                            help="the Alternative Annotator Test's margin (default 0.2 for experts, 0.1 for crowds)")
        parser.add_argument("--json", action="store_true", help="everything, per class and confusion matrix too")

    def handle(self, *args, run, reference, bootstrap, epsilon, json: bool, **options):
        if not 0 <= bootstrap <= 100_000:
            raise CommandError(f"--bootstrap {bootstrap}: give 0 to 100000")
        if epsilon is not None and not 0 <= epsilon <= 1:
            raise CommandError(f"--epsilon {epsilon}: give a margin from 0 to 1")
        try:
            reference_set = reference_by_name(reference)
        except UnknownReference as exc:
            raise CommandError(str(exc)) from None
        found = run_quality(run or current_run(), reference_set, bootstrap=bootstrap, epsilon=epsilon)
        if json:
            self.stdout.write(_json(quality_document(found)))
            return
        self._table(found)

    def _table(self, found) -> None:
        reference = found.reference_set
        self.stdout.write(f"run {found.run.name} against reference set {reference.name} ({reference.kind}"
                          f"{'; ' + reference.citation if reference.citation else ''}); 95 % bootstrap intervals "
                          f"from {found.bootstrap} resamples")
        if found.nothing_in_common:
            self.stdout.write(found.nothing_in_common)
            return
        for domain in found.domains:
            self.stdout.write(f"\n{domain.slug}: {domain.reference_items} reference item(s), up to "
                              f"{domain.most_raters} rater(s) per item; kappa "
                              f"{domain.rows[0].result.kappa_weights if domain.rows else ''}")
            self.stdout.write(f"  {'':16} {'n':>5}  {'accuracy':24} {'macro-F1':24} {'kappa':25} {'malformed':24}")
            for row in domain.rows:
                result = row.result
                self.stdout.write(f"  {row.name:16} {result.n:5}  {_shown(result.accuracy):24} "
                                  f"{_shown(result.macro_f1):24} {_shown(result.kappa):25} {_shown(row.malformed):24}")
            for row in domain.rows:
                if row.calibration:
                    self._calibration(row)
            for test in domain.alt_tests:
                verdict = "may replace a rater" if test.result.passed else "may not replace a rater"
                rate = "—" if test.result.winning_rate is None else f"{test.result.winning_rate:.2f}"
                self.stdout.write(f"  alt-test annotator {test.annotator}: {verdict} (winning rate {rate}, "
                                  f"epsilon {test.result.epsilon}, {test.result.tested} rater(s) tested)")

    def _calibration(self, row) -> None:
        found = row.calibration
        self.stdout.write(f"  calibration of {row.name}: ECE {found.ece:.3f} over {found.n} comparison(s)")
        self.stdout.write(f"    {'confidence':10} {'labels':>6}  {'mean conf.':>10}  {'accuracy':>8}")
        for b in found.bins:
            mean = "—" if b.mean_confidence is None else f"{b.mean_confidence:.3f}"
            accuracy = "—" if b.accuracy is None else f"{b.accuracy:.3f}"
            self.stdout.write(f"    {b.low:.1f}–{b.high:.1f}    {b.count:6}  {mean:>10}  {accuracy:>8}")


def _json(value: object) -> str:
    return json.dumps(value, indent=1, ensure_ascii=False)
