"""Two runs side by side: for every (domain, annotator) both runs have outcomes for, how the labels of the samples
both runs annotated OK moved. A read of the store and nothing else, so the page, its CSV and the tests see the same.

A malformed outcome is no label, as everywhere in the product: a sample counts only where both runs hold an OK
label for it. Agreement follows the consolidated workbook: Cohen's kappa for one-code domains (quadratic weights when
ordinal), Krippendorff's alpha with the MASI distance for code sets (Cohen's kappa needs categories, and every
distinct set would be one), nothing for free-text lists.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

from django.db.models import Count

from stats.agreement import MASI, agreement_with_reference, krippendorff_alpha
from stats.quality import Estimate
from workers_app.models import Annotator, Domain, Outcome, ReferenceSet, Run, Sample
from workers_app.references.quality import run_quality
from workers_app.runs.current import pinned_domain

CHANGES_KEPT = 200  # per (domain, annotator): enough to read on a page; the CSV takes them all

Pair = tuple[int, int]  # (domain id, annotator id)

MEASURES = {
    Domain.Kind.ORDINAL: "Cohen's kappa, quadratic weights",
    Domain.Kind.NOMINAL: "Cohen's kappa",
    Domain.Kind.CODE_SET: "Krippendorff's alpha, MASI distance",
}
NO_MEASURE = "none (free text)"


class ComparisonRefused(ValueError):
    """Two runs that cannot be compared as asked; the message says why."""


@dataclass(frozen=True)
class Seen:
    """A prompt version and model a run's outcomes of one (domain, annotator) came from."""

    prompt_version: int
    model: str
    outcomes: int


@dataclass(frozen=True)
class ChangedLabel:
    external_id: str
    label_a: str
    label_b: str


@dataclass
class PairComparison:
    domain: str
    annotator: int
    measure: str  # what ``agreement`` is
    n: int  # samples both runs annotated OK
    identical: float | None  # share of those with the same label; None when n is 0
    agreement: float | None  # None when n is 0, undefined (no variation) or there is no measure (free text)
    changed: int
    changes: list[ChangedLabel]  # the first ones in sample order, at most the cap asked for
    seen_a: list[Seen]
    seen_b: list[Seen]
    # Against the reference set, when one was chosen: each run's accuracy on the items it labelled that the set
    # labels (None: no such item, or no set chosen), and how many comparisons it rests on.
    accuracy_a: Estimate | None = None
    accuracy_b: Estimate | None = None
    reference_n_a: int = 0
    reference_n_b: int = 0

    @property
    def identical_percent(self) -> float | None:
        return None if self.identical is None else 100 * self.identical

    @property
    def reference_accuracies(self) -> list[tuple[Estimate | None, int]]:
        return [(self.accuracy_a, self.reference_n_a), (self.accuracy_b, self.reference_n_b)]

    @property
    def all_changes_kept(self) -> bool:
        return len(self.changes) == self.changed


@dataclass
class RunComparison:
    a: Run
    b: Run
    pairs: list[PairComparison] = field(default_factory=list)  # by domain position, then annotator number
    reference: ReferenceSet | None = None

    @property
    def n(self) -> int:
        return sum(pair.n for pair in self.pairs)

    @property
    def changed(self) -> int:
        return sum(pair.changed for pair in self.pairs)

    @property
    def nothing_in_common(self) -> str | None:
        """Why there is nothing to compare, or None when there is."""
        if not self.pairs:
            return (f"Nothing in common: no annotator has outcomes for the same domain in both run {self.a.name} "
                    f"and run {self.b.name}.")
        if self.n == 0:
            return (f"Nothing in common: runs {self.a.name} and {self.b.name} share annotators and domains, but no "
                    f"sample has an OK label from the same annotator and domain in both.")
        return None

    def by_domain(self) -> list[tuple[str, list[PairComparison]]]:
        grouped: dict[str, list[PairComparison]] = {}
        for pair in self.pairs:
            grouped.setdefault(pair.domain, []).append(pair)
        return list(grouped.items())


def compare_runs(a: Run, b: Run, *, keep: int | None = CHANGES_KEPT,
                 reference: ReferenceSet | None = None) -> RunComparison:
    """Compare run ``b`` with run ``a``; ``keep`` caps the changed labels listed per (domain, annotator) (None: all);
    with ``reference``, each run's accuracy against it too. The same run twice is refused."""
    if a.pk == b.pk:
        raise ComparisonRefused(f"run {a.name} compared with itself: choose two different runs")
    seen_a, seen_b = _seen(a), _seen(b)
    common = seen_a.keys() & seen_b.keys()
    if not common:
        return RunComparison(a, b, reference=reference)
    domains = Domain.objects.in_bulk({domain for domain, _ in common})
    numbers = dict(Annotator.objects.filter(pk__in={annotator for _, annotator in common})
                   .values_list("pk", "number"))
    ordered = sorted(common, key=lambda p: (domains[p[0]].position, domains[p[0]].slug, numbers[p[1]]))
    labels_a, labels_b = _ok_labels(a, ordered), _ok_labels(b, ordered)
    found = {pair: _figures(pinned_domain(a, domains[pair[0]]), pinned_domain(b, domains[pair[0]]),
                            labels_a[pair], labels_b[pair]) for pair in ordered}
    kept = {pair: figures.changes[:keep] if keep is not None else figures.changes
            for pair, figures in found.items()}
    names = _external_ids({sample_id for changes in kept.values() for sample_id, _, _ in changes})
    comparison = RunComparison(a, b, [
        PairComparison(domain=domains[pair[0]].slug, annotator=numbers[pair[1]], measure=figures.measure,
                       n=figures.n, identical=figures.identical, agreement=figures.agreement,
                       changed=len(figures.changes),
                       changes=[ChangedLabel(names[sample_id], x, y) for sample_id, x, y in kept[pair]],
                       seen_a=seen_a[pair], seen_b=seen_b[pair])
        for pair, figures in found.items()], reference=reference)
    if reference is not None:
        _add_accuracy(comparison, reference)
    return comparison


def _accuracies(run: Run, reference: ReferenceSet) -> dict[tuple[str, int], tuple[Estimate, int]]:
    quality = run_quality(run, reference, worst=0)
    return {(domain.slug, row.annotator): (row.result.accuracy, row.result.n) for domain in quality.domains
            for row in domain.rows if row.annotator is not None}


def _add_accuracy(comparison: RunComparison, reference: ReferenceSet) -> None:
    in_a, in_b = _accuracies(comparison.a, reference), _accuracies(comparison.b, reference)
    for pair in comparison.pairs:
        key = (pair.domain, pair.annotator)
        if key in in_a:
            pair.accuracy_a, pair.reference_n_a = in_a[key]
        if key in in_b:
            pair.accuracy_b, pair.reference_n_b = in_b[key]


def _seen(run: Run) -> dict[Pair, list[Seen]]:
    """Which prompt versions and models each (domain, annotator) of the run answered with; one grouped query."""
    seen: dict[Pair, list[Seen]] = defaultdict(list)
    for row in (Outcome.objects.filter(run=run).values("domain_id", "annotator_id", "prompt_version", "model")
                .annotate(n=Count("id")).order_by("domain_id", "annotator_id", "prompt_version", "model")):
        seen[row["domain_id"], row["annotator_id"]].append(Seen(row["prompt_version"], row["model"], row["n"]))
    return seen


def _ok_labels(run: Run, pairs: list[Pair]) -> dict[Pair, dict[int, list[str]]]:
    wanted = set(pairs)
    found: dict[Pair, dict[int, list[str]]] = {pair: {} for pair in pairs}
    rows = (Outcome.objects.filter(run=run, status=Outcome.Status.OK, domain_id__in={d for d, _ in pairs},
                                   annotator_id__in={a for _, a in pairs})
            .values_list("domain_id", "annotator_id", "sample_id", "labels"))
    for domain_id, annotator_id, sample_id, labels in rows.iterator(chunk_size=5000):
        if (domain_id, annotator_id) in wanted:
            found[domain_id, annotator_id][sample_id] = labels
    return found


def _comparable(kind: str, labels: list[str]) -> object:
    """What counts as the same label: the one code, the set of codes (order is no difference), or the list."""
    if kind in (Domain.Kind.ORDINAL, Domain.Kind.NOMINAL):
        return labels[0] if labels else None
    if kind == Domain.Kind.CODE_SET:
        return frozenset(labels)
    return tuple(labels)


def _text(kind: str, labels: list[str]) -> str:
    return ", ".join(sorted(labels) if kind == Domain.Kind.CODE_SET else labels)


def _categories(domain_a: Domain, domain_b: Domain, values: list[object]) -> list[str]:
    """Both runs' codes in run a's order (b's new ones after), then any label neither lists, so that a run whose
    codes changed is still compared rather than refused."""
    categories = list(dict.fromkeys([*domain_a.code_list, *domain_b.code_list]))
    return categories + [v for v in dict.fromkeys(values) if v is not None and v not in categories]


def _agreement(domain_a: Domain, domain_b: Domain, given_a: list[object], given_b: list[object]) -> float | None:
    kind = domain_a.kind
    if not given_a or kind not in MEASURES:
        return None
    if kind == Domain.Kind.CODE_SET:
        return krippendorff_alpha([given_a, given_b], level=MASI, bootstrap=0).alpha
    categories = _categories(domain_a, domain_b, [*given_a, *given_b])
    return agreement_with_reference(given_a, given_b, categories=categories,
                                    weighted=kind == Domain.Kind.ORDINAL).kappa


@dataclass(frozen=True)
class _Figures:
    measure: str
    n: int
    identical: float | None
    agreement: float | None
    changes: list[tuple[int, str, str]]  # (sample id, label in a, label in b), in sample order


def _figures(domain_a: Domain, domain_b: Domain, labels_a: dict[int, list[str]],
             labels_b: dict[int, list[str]]) -> _Figures:
    kind = domain_a.kind
    shared = sorted(labels_a.keys() & labels_b.keys())
    given_a = [_comparable(kind, labels_a[s]) for s in shared]
    given_b = [_comparable(kind, labels_b[s]) for s in shared]
    changes = [(s, _text(kind, labels_a[s]), _text(kind, labels_b[s]))
               for s, x, y in zip(shared, given_a, given_b, strict=True) if x != y]
    n = len(shared)
    return _Figures(MEASURES.get(kind, NO_MEASURE), n, (n - len(changes)) / n if n else None,
                    _agreement(domain_a, domain_b, given_a, given_b), changes)


def _external_ids(sample_ids: set[int]) -> dict[int, str]:
    # in_bulk batches the ids by the database's parameter limit: the CSV may name every sample of a run.
    return {pk: sample.external_id for pk, sample in Sample.objects.only("external_id").in_bulk(sample_ids).items()}
