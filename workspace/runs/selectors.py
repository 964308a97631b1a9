"""Reads of the runs pages: a row per run (a few grouped queries for a page, plus its cost), and everything one run
needs to be made again."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from decimal import Decimal

from django.db.models import Count, Q

from workers_app.engine.cost import cost_totals
from workers_app.engine.gold import GoldScore, gold_scores
from workers_app.models import Annotator, Corpus, Domain, MalformedAttempt, Outcome, Run, RunSample, Sample
from workers_app.runs.current import run_annotators, run_domains
from workers_app.runs.record import SeenVersion, seen_versions
from workspace.files.selectors import Consolidation, consolidations_of


@dataclass(frozen=True)
class Spend:
    amount: Decimal
    currency: str


@dataclass
class RunRow:
    run: Run
    samples: int
    annotators: int
    domains: int
    stored: int
    spend: list[Spend]  # per currency; empty while no outcome of the run has a price

    @property
    def expected(self) -> int:
        return self.samples * self.annotators * self.domains

    @property
    def percent(self) -> int:
        return round(100 * self.stored / self.expected) if self.expected else 0


def run_rows(runs: list[Run]) -> list[RunRow]:
    """The figures of each run: samples and outcomes in two grouped queries, the catalogue sizes the default run
    follows in two more, and the cost of each run from ``cost_totals``."""
    members = dict(RunSample.objects.filter(run__in=runs).values("run_id").annotate(n=Count("id"))
                   .values_list("run_id", "n"))
    stored = dict(Outcome.objects.filter(run__in=runs).values("run_id").annotate(n=Count("id"))
                  .values_list("run_id", "n"))
    every = (Sample.objects.count(), Annotator.objects.count(), Domain.objects.count()) \
        if any(run.all_samples for run in runs) else (0, 0, 0)
    rows = []
    for run in runs:
        size = every if run.all_samples else (members.get(run.pk, 0), len(run.annotators), len(run.domains))
        rows.append(RunRow(run, *size, stored=stored.get(run.pk, 0), spend=spend_of(run)))
    return rows


def spend_of(run: Run) -> list[Spend]:
    by_currency: dict[str, Decimal] = defaultdict(Decimal)
    for total in cost_totals(run=run):
        if total.priced:
            by_currency[total.currency] += total.cost
    return [Spend(amount, currency) for currency, amount in sorted(by_currency.items())]


# ------------------------------------------------------------------------------------------------ one run


@dataclass(frozen=True)
class WorkerProgress:
    annotator: int
    domain: str
    stored: int
    malformed: int  # outcomes that stayed malformed
    attempts: int  # malformed answers, also those a retry fixed
    expected: int


@dataclass(frozen=True)
class RunDomain:
    domain: Domain  # as the run uses it: pinned, or live for the default run
    live_version: int  # the catalogue's prompt version now

    @property
    def moved_on(self) -> bool:
        return self.live_version != self.domain.prompt_version


@dataclass
class RunDetail:
    row: RunRow
    annotators: list[Annotator]  # as the run uses them: pinned, or live for the default run
    domains: list[RunDomain]
    corpora: list[Corpus]
    workers: list[list[WorkerProgress]]  # annotators x domains
    seen: list[SeenVersion]
    consolidations: list[Consolidation]
    # Per annotator with gold answers: its number, rolling score, and whether it is judged and below the threshold.
    gold: list[tuple[int, GoldScore, bool]] = field(default_factory=list)

    @property
    def run(self) -> Run:
        return self.row.run

    @property
    def gold_items(self) -> int:
        return self.run.selection.get("gold_items", 0)


def run_detail(run: Run, *, with_consolidations: bool) -> RunDetail:
    row = run_rows([run])[0]
    annotators, domains = run_annotators(run), run_domains(run)
    corpora = list(Corpus.objects.filter(pk__in=run.selection.get("corpora") or []).order_by("pk"))
    live = dict(Domain.objects.values_list("slug", "prompt_version"))
    return RunDetail(
        row=row, annotators=annotators, domains=[RunDomain(d, live[d.slug]) for d in domains], corpora=corpora,
        workers=_progress(run, annotators, domains, row.samples), seen=seen_versions(run),
        consolidations=consolidations_of(run) if with_consolidations else [], gold=[
            (number, score, score.failing(run)) for number, score in gold_scores(run).items()])


def _progress(run: Run, annotators: list[Annotator], domains: list[Domain],
              expected: int) -> list[list[WorkerProgress]]:
    counts = {(r["annotator__number"], r["domain__slug"]): r for r in Outcome.objects.filter(run=run).values(
        "annotator__number", "domain__slug").annotate(
        n=Count("id"), malformed=Count("id", filter=Q(status=Outcome.Status.MALFORMED)))}
    attempts = {(r["annotator__number"], r["domain__slug"]): r["n"] for r in MalformedAttempt.objects.filter(
        run=run).values("annotator__number", "domain__slug").annotate(n=Count("id"))}
    grid = []
    for annotator in annotators:
        row = []
        for domain in domains:
            found = counts.get((annotator.number, domain.slug), {})
            row.append(WorkerProgress(annotator.number, domain.slug, found.get("n", 0), found.get("malformed", 0),
                                      attempts.get((annotator.number, domain.slug), 0), expected))
        grid.append(row)
    return grid


def other_runs(run: Run) -> list[str]:
    return list(Run.objects.exclude(pk=run.pk).order_by("-created_at", "-id").values_list("name", flat=True))
