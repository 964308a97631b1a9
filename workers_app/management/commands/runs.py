from decimal import Decimal, InvalidOperation

from django.core.management.base import BaseCommand, CommandError

from audit.actors import cli_actor
from workers_app.management.cli import annotator_number, run_name
from workers_app.models import Outcome, Run
from workers_app.references.selectors import UnknownReference, reference_by_name
from workers_app.runs.compare import ComparisonRefused, compare_runs
from workers_app.runs.current import run_samples
from workers_app.runs.gold import GOLD_DEFAULTS, GoldPlan
from workers_app.runs.services import RunPlan, RunRefused, create_run, delete_run, switch_run


def _decimal(text: str) -> Decimal:
    try:
        return Decimal(text)
    except InvalidOperation:
        raise CommandError(f"--budget: {text!r:.40} is not a number") from None


def _gold(options: dict) -> GoldPlan | None:
    given = {name: options[f"gold_{name}"] for name in (*GOLD_DEFAULTS, "window")
             if options[f"gold_{name}"] is not None}
    if not options["gold_reference"]:
        if given:
            raise CommandError(f"--gold-{next(iter(given)).replace('_', '-')} without --gold-reference: name the "
                               "reference set whose items are mixed in")
        return None
    return GoldPlan(reference=reference_by_name(options["gold_reference"]), **{**GOLD_DEFAULTS, **given})


class Command(BaseCommand):
    help = ("Named runs: list them, make one (a subset of the corpus x annotators x domains, with the prompts and "
            "model settings pinned as they are now), make one current (the fleet then works on it), or delete one.")

    def add_arguments(self, parser):
        commands = parser.add_subparsers(dest="command", required=True)
        commands.add_parser("list", help="every run, the current one marked")
        create = commands.add_parser("create", help="make a run (it does not become current)")
        create.add_argument("name")
        create.add_argument("--description", default="")
        create.add_argument("--annotator", type=annotator_number, action="append", default=[],
                            help="repeat for several (default: all)")
        create.add_argument("--domain", action="append", default=[], help="repeat for several (default: all)")
        create.add_argument("--corpus", type=int, action="append", default=[], help="corpus id (default: all)")
        create.add_argument("--share", type=float, help="a seeded random share of the samples, e.g. 0.1")
        create.add_argument("--seed", type=int, default=0)
        create.add_argument("--limit", type=int, help="at most this many samples")
        create.add_argument("--budget", help="stop calling once the run's outcomes cost this much")
        gold = create.add_argument_group("gold checks", "mix items of a reference set into the run, unknown to the "
                                         "workers, and pause an annotator whose accuracy on them falls")
        gold.add_argument("--gold-reference", help="the reference set whose items are mixed in")
        gold.add_argument("--gold-share", type=float,
                          help=f"gold items as a share of the samples chosen (default {GOLD_DEFAULTS['share']})")
        gold.add_argument("--gold-threshold", type=float, help="pause an annotator whose gold accuracy falls below "
                          f"this (default {GOLD_DEFAULTS['threshold']})")
        gold.add_argument("--gold-min-items", type=int,
                          help=f"gold answers before an annotator is judged (default {GOLD_DEFAULTS['min_items']})")
        gold.add_argument("--gold-window", type=int,
                          help="judge the last N gold answers (default: every gold answer of the run)")
        switch = commands.add_parser("switch", help="make a run current: the previous run's waiting messages are "
                                                    "dropped (its outcomes stay) and this run's samples queued")
        switch.add_argument("run", type=run_name)
        compare = commands.add_parser("compare", help="agreement between two runs per domain and annotator, and the "
                                                      "labels that changed")
        compare.add_argument("a", type=run_name)
        compare.add_argument("b", type=run_name)
        compare.add_argument("--changes", type=int, default=10, help="changed labels to print per pair (default 10)")
        compare.add_argument("--reference", help="each run's accuracy against this reference set too")
        delete = commands.add_parser("delete", help="delete a run that is not current, with its outcomes")
        delete.add_argument("run", type=run_name)
        delete.add_argument("--yes", action="store_true", help="confirm: its outcomes are deleted")

    def handle(self, *args, command, **options):
        try:
            getattr(self, f"_{command}")(**options)
        except (RunRefused, ComparisonRefused, UnknownReference) as exc:
            raise CommandError(str(exc)) from None

    def _list(self, **options) -> None:
        for run in Run.objects.order_by("created_at", "id"):
            stored = Outcome.objects.filter(run=run).count()
            mark = "*" if run.is_current else " "
            self.stdout.write(f"{mark} {run.name:24} samples {run_samples(run).count():6}  outcomes {stored:7}  "
                              f"made {run.created_at:%Y-%m-%d %H:%M} by {run.created_by}")

    def _create(self, *, name, description, annotator, domain, corpus, share, seed, limit, budget, **options) -> None:
        plan = RunPlan(name=name, description=description, annotators=annotator, domains=domain, corpora=corpus,
                       share=share, seed=seed, limit=limit, budget=None if budget is None else _decimal(budget),
                       gold=_gold(options))
        run = create_run(plan, actor=cli_actor())
        gold = (f" (of them {run.selection['gold_items']} gold items of {run.gold_reference.name})"
                if run.checks_gold else "")
        self.stdout.write(f"made run {run.name}: {run.selection['samples']} samples{gold} x {len(run.annotators)} "
                          f"annotator(s) x {len(run.domains)} domain(s); make it current with: "
                          f"manage.py runs switch {run.name}")

    def _switch(self, *, run, **options) -> None:
        queued = switch_run(run, actor=cli_actor())
        self.stdout.write(f"run {run.name} is current; queued {sum(queued.values())} sample(s) for the running "
                          f"workers")

    def _compare(self, *, a, b, changes, reference, **options) -> None:
        if changes < 0:
            raise CommandError(f"--changes {changes}: give 0 or more")
        found = compare_runs(a, b, keep=changes, reference=reference_by_name(reference) if reference else None)
        if not found.pairs:
            self.stdout.write(f"runs {a.name} and {b.name} have nothing in common: no domain and annotator with "
                              "outcomes in both")
            return
        self.stdout.write(f"{'domain':12} {'annotator':>9} {'n':>6} {'identical':>9} {'agreement':>9}  changed  measure")
        for pair in found.pairs:
            identical = "—" if pair.identical is None else f"{pair.identical:.1%}"
            agreement = "—" if pair.agreement is None else f"{pair.agreement:.3f}"
            self.stdout.write(f"{pair.domain:12} {pair.annotator:9} {pair.n:6} {identical:>9} {agreement:>9}  "
                              f"{pair.changed:7}  {pair.measure}")
            if found.reference is not None:
                shown = ["—" if e is None or e.value is None else f"{e.value:.3f} (n {n})"
                         for e, n in pair.reference_accuracies]
                self.stdout.write(f"    accuracy against {found.reference.name}: {a.name} {shown[0]}, "
                                  f"{b.name} {shown[1]}")
            for change in pair.changes:
                self.stdout.write(f"    {change.external_id}: {change.label_a or '—'} -> {change.label_b or '—'}")

    def _delete(self, *, run, yes, **options) -> None:
        if not yes:
            stored = Outcome.objects.filter(run=run).count()
            raise CommandError(f"deleting run {run.name} deletes its {stored} outcome(s): add --yes to confirm")
        self.stdout.write(f"deleted run {run.name} and its {delete_run(run, actor=cli_actor())} outcome(s)")
