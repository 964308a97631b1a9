"""Reads of the annotation browser, each of one run's samples and outcomes. Every filter is one subquery over an
indexed column of ``Outcome``; the figures of a page come from one query over the outcomes of its (at most 50)
samples, never a query per row."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

from django.db.models import Count, Q, QuerySet
from django.db.models.functions import Substr

from stats.agreement import majority_label
from workers_app.models import Annotator, Corpus, Domain, MalformedAttempt, Outcome, ReviewItem, Run, Sample
from workers_app.runs.current import current_run, run_samples, takes_part

URGENCY = "urgency"
URGENT = "LEVEL_4"
REFUSAL = "refusal"
EXCERPT_CHARS = 160


@dataclass(frozen=True)
class Catalogue:
    annotators: list[Annotator]
    domains: list[Domain]

    @property
    def cells(self) -> int:
        return len(self.annotators) * len(self.domains)

    def domain(self, slug: str | None) -> Domain | None:
        return next((d for d in self.domains if d.slug == slug), None)

    def annotator(self, number: int | None) -> Annotator | None:
        return next((a for a in self.annotators if a.number == number), None)

    def of_run(self, run: Run) -> Catalogue:
        """The annotators and domains ``run`` takes (all of them for the default run)."""
        numbers, slugs = {a.number for a in self.annotators}, {d.slug for d in self.domains}
        return Catalogue([a for a in self.annotators if any(takes_part(run, a.number, s) for s in slugs)],
                         [d for d in self.domains if any(takes_part(run, n, d.slug) for n in numbers)])


def load_catalogue() -> Catalogue:
    return Catalogue(list(Annotator.objects.order_by("number")), list(Domain.objects.order_by("position", "slug")))


def corpora() -> list[Corpus]:
    return list(Corpus.objects.order_by("-imported_at"))


def runs() -> list[Run]:
    """Every run, the current one first (made on an empty store, as everywhere)."""
    current_run()
    return list(Run.objects.order_by("-is_current", "-created_at", "-id"))


def run_in(runs: list[Run], name: str | None) -> Run:
    """The run called ``name`` among ``runs``; the current one when no name is given."""
    return next(r for r in runs if (r.name == name if name else r.is_current))


# ------------------------------------------------------------------------------------------------------ the list


def filtered_samples(values: dict, catalogue: Catalogue, run: Run) -> QuerySet[Sample]:
    """The samples of ``run`` the browser's filters select, by their outcomes in that run, in import order;
    ``values`` are the form's valid values."""
    samples = run_samples(run)
    if values.get("corpus"):
        samples = samples.filter(corpus_id=values["corpus"])
    if values.get("q"):
        samples = samples.filter(Q(external_id__icontains=values["q"]) | Q(text__icontains=values["q"]))
    annotator = catalogue.annotator(values.get("annotator"))
    domain = catalogue.domain(values.get("domain"))
    outcomes = Outcome.objects.filter(run=run)
    scope = _scope(outcomes, annotator, domain)
    if annotator or domain:
        samples = samples.filter(pk__in=scope.values("sample_id"))
    if values.get("status") == Outcome.Status.MALFORMED:
        samples = samples.filter(pk__in=scope.filter(status=Outcome.Status.MALFORMED).values("sample_id"))
    elif values.get("status") == Outcome.Status.OK:
        samples = samples.filter(pk__in=scope.values("sample_id")).exclude(
            pk__in=scope.filter(status=Outcome.Status.MALFORMED).values("sample_id"))
    if values.get("refusal"):
        samples = samples.filter(pk__in=scope.filter(reason=REFUSAL).values("sample_id"))
    if values.get("level_4"):
        samples = samples.filter(pk__in=_urgent(outcomes, annotator, catalogue.domain(URGENCY)))
    if values.get("disagreement"):
        samples = samples.filter(pk__in=_disagreeing(outcomes, domain))
    return _by_review(samples, values.get("review"))


def _scope(outcomes: QuerySet[Outcome], annotator: Annotator | None, domain: Domain | None) -> QuerySet[Outcome]:
    if annotator:
        outcomes = outcomes.filter(annotator_id=annotator.pk)
    if domain:
        outcomes = outcomes.filter(domain_id=domain.pk)
    return outcomes


def _urgent(outcomes: QuerySet[Outcome], annotator: Annotator | None, urgency: Domain | None) -> QuerySet[Outcome]:
    if urgency is None:
        return outcomes.none().values("sample_id")
    # Urgency is ordinal: an OK answer holds exactly one code, so equality with the one-code list is the test.
    given = _scope(outcomes.filter(status=Outcome.Status.OK), annotator, urgency)
    return given.filter(labels=[URGENT]).values("sample_id")


def _disagreeing(outcomes: QuerySet[Outcome], domain: Domain | None) -> QuerySet[Outcome]:
    """Samples where the OK labels of one domain (of ``domain``, when given) are not all the same."""
    given = _scope(outcomes.filter(status=Outcome.Status.OK), None, domain)
    return (given.values("sample_id", "domain_id").annotate(kinds=Count("labels", distinct=True))
            .filter(kinds__gt=1).values("sample_id"))


def _by_review(samples: QuerySet[Sample], review: str | None) -> QuerySet[Sample]:
    if review == "flagged":
        return samples.filter(review_item__isnull=False).exclude(review_item__status=ReviewItem.Status.REVIEWED)
    if review == "reviewed":
        return samples.filter(review_item__status=ReviewItem.Status.REVIEWED)
    if review == "not_flagged":
        return samples.filter(review_item__isnull=True)
    return samples


@dataclass
class Row:
    sample: Sample
    done: int = 0
    malformed: int = 0
    refusals: int = 0
    urgent: bool = False
    disagreeing: list[str] = field(default_factory=list)

    @property
    def review(self) -> ReviewItem | None:
        return getattr(self.sample, "review_item", None)


def for_listing(samples: QuerySet[Sample]) -> QuerySet[Sample]:
    """What a list row reads of a sample: an excerpt instead of the whole text (up to 100,000 characters), and its
    review item in the same query."""
    return samples.select_related("review_item").defer("text").annotate(excerpt=Substr("text", 1, EXCERPT_CHARS))


def page_rows(page: list[Sample], catalogue: Catalogue, run: Run) -> list[Row]:
    """One row per sample of a page, with the figures of its outcomes in ``run`` from one query."""
    rows = {sample.pk: Row(sample) for sample in page}
    labels: dict[tuple[int, int], set[tuple]] = defaultdict(set)
    urgency = catalogue.domain(URGENCY)
    for outcome in Outcome.objects.filter(run=run, sample_id__in=rows).values_list(
            "sample_id", "domain_id", "status", "reason", "labels"):
        sample_id, domain_id, status, reason, given = outcome
        row = rows[sample_id]
        row.done += 1
        row.malformed += status == Outcome.Status.MALFORMED
        row.refusals += reason == REFUSAL
        if status == Outcome.Status.OK:
            row.urgent |= urgency is not None and domain_id == urgency.pk and URGENT in given
            labels[sample_id, domain_id].add(tuple(given))
    slugs = {d.pk: d.slug for d in catalogue.domains}
    for (sample_id, domain_id), kinds in sorted(labels.items()):
        if len(kinds) > 1:
            rows[sample_id].disagreeing.append(slugs.get(domain_id, str(domain_id)))
    return list(rows.values())


# ------------------------------------------------------------------------------------------------ one sample


@dataclass
class Cell:
    annotator: Annotator
    domain: Domain
    outcome: Outcome | None
    attempts: list[MalformedAttempt]

    @property
    def key(self) -> str:
        return f"annotator_{self.annotator.number}_{self.domain.slug}"


@dataclass(frozen=True)
class Agreement:
    domain: Domain
    label: str | None  # the majority label, None on a tie or without OK labels
    votes: int  # how many annotators gave it
    given: int  # how many OK labels there are


@dataclass
class SampleView:
    sample: Sample
    run: Run
    in_run: bool  # the run takes this sample
    catalogue: Catalogue  # the annotators and domains the run takes
    grid: list[list[Cell]]  # annotators x domains
    agreement: list[Agreement]

    @property
    def review(self) -> ReviewItem | None:
        return getattr(self.sample, "review_item", None)

    @property
    def done(self) -> int:
        return sum(cell.outcome is not None for row in self.grid for cell in row)


def sample_view(pk: int, run: Run) -> SampleView:
    """Everything the sample page shows of ``run``, in six queries; Sample.DoesNotExist for an unknown id."""
    sample = Sample.objects.select_related(
        "corpus", "review_item", "review_item__claimed_by", "review_item__reviewed_by").get(pk=pk)
    catalogue = load_catalogue().of_run(run)
    in_run = run.all_samples or run.members.filter(sample=sample).exists()
    outcomes = {(o.annotator_id, o.domain_id): o for o in Outcome.objects.filter(run=run, sample=sample)}
    attempts = defaultdict(list)
    for attempt in MalformedAttempt.objects.filter(run=run, sample=sample).order_by("attempt", "id"):
        attempts[attempt.annotator_id, attempt.domain_id].append(attempt)
    grid = [[Cell(a, d, outcomes.get((a.pk, d.pk)), attempts[a.pk, d.pk]) for d in catalogue.domains]
            for a in catalogue.annotators]
    agreement = [_agreement(d, [row[index].outcome for row in grid]) for index, d in enumerate(catalogue.domains)]
    return SampleView(sample, run, in_run, catalogue, grid, agreement)


def _agreement(domain: Domain, outcomes: list[Outcome | None]) -> Agreement:
    given = [tuple(o.labels) if o and o.status == Outcome.Status.OK else None for o in outcomes]
    label, _ = majority_label(given)
    votes = sum(value == label for value in given) if label is not None else 0
    return Agreement(domain, ", ".join(label) if label is not None else None, votes,
                     sum(value is not None for value in given))
