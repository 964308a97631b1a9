"""The quality of a run against a reference set: per domain the reference covers, a row per annotator and two rows
of consensus (the annotators' majority vote, and Dawid–Skene), each with n, accuracy, macro-F1, per-class scores,
kappa and the confusion matrix (95 % bootstrap intervals, stats.quality), the share malformed or refused, the
items it got most wrong, and where its labels have confidences (logprobs) a calibration table (stats.calibration);
and, where the set holds at least three raters per item, the Alternative Annotator Test per
annotator. A read of the store and nothing else: the command, the page, the API and the workbook show the same.

A malformed answer is no label, as everywhere in the product: it is not compared, and counts in the malformed share
(over the reference items the annotator answered). The consensus rows read only the well-formed labels; an item
whose vote is tied has no majority label.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import numpy as np
from django.db import connection
from threadpoolctl import threadpool_limits

from stats.alt_test import AltTestResult, encoded_alt_test
from stats.calibration import Calibration, calibration
from stats.quality import (
    NOMINAL,
    ORDINAL,
    SET,
    Estimate,
    QualityResult,
    Scale,
    dawid_skene_labels,
    majority_labels,
    prepare,
    scale,
    scored,
    shares,
)
from workers_app.engine.parsing import REFUSAL
from workers_app.models import Domain, Outcome, ReferenceLabel, ReferenceSet, Run
from workers_app.review.services import allowed_codes
from workers_app.runs.current import run_annotators, run_domains

from .selectors import reference_labels, reference_samples

KINDS = {Domain.Kind.ORDINAL: ORDINAL, Domain.Kind.NOMINAL: NOMINAL, Domain.Kind.CODE_SET: SET}
MAJORITY, DAWID_SKENE, ANNOTATOR = "majority", "dawid_skene", "annotator"
WORST_KEPT = 10
# The Alternative Annotator Test's cost-benefit margin by who the raters are: replacing an expert saves more than
# replacing a crowd worker, so a larger margin is granted (the paper's guidance, as read here).
EPSILON = {ReferenceSet.Kind.EXPERT: 0.2, ReferenceSet.Kind.ADJUDICATED: 0.2, ReferenceSet.Kind.CROWD: 0.1}
MIN_RATERS_FOR_ALT_TEST = 3


@dataclass(frozen=True)
class WrongItem:
    sample_id: int
    external_id: str
    given: str
    reference: str  # the raters' labels, "; " between raters
    distance: float  # ordinal: levels apart (mean over raters); nominal: share of raters it disagrees with; sets: MASI


@dataclass
class Row:
    """One labeller of one domain against the reference."""

    name: str  # "annotator 2", "majority vote", "Dawid–Skene"
    kind: str  # ANNOTATOR, MAJORITY or DAWID_SKENE
    annotator: int | None
    result: QualityResult
    answered: int  # reference items this labeller has an outcome (or a consensus) for
    malformed: Estimate
    refused: Estimate
    worst: list[WrongItem] = field(default_factory=list)
    calibration: Calibration | None = None  # an annotator with stored confidences (logprobs) on reference items


@dataclass
class AltTestRow:
    annotator: int
    result: AltTestResult


@dataclass
class DomainQuality:
    domain: Domain  # as the run uses it
    reference_items: int  # samples of the run the reference labels in this domain
    most_raters: int
    rows: list[Row] = field(default_factory=list)
    alt_tests: list[AltTestRow] = field(default_factory=list)

    @property
    def slug(self) -> str:
        return self.domain.slug


@dataclass
class RunQuality:
    run: Run
    reference_set: ReferenceSet
    domains: list[DomainQuality]
    epsilon: float
    bootstrap: int

    @property
    def calibrated(self) -> list[tuple[str, Row]]:
        """(domain, row) of every annotator whose labels have confidences: the calibration tables to show."""
        return [(domain.slug, row) for domain in self.domains for row in domain.rows if row.calibration]

    @property
    def nothing_in_common(self) -> str | None:
        if not self.domains:
            return (f"Nothing in common: reference set {self.reference_set.name} labels no sample of run "
                    f"{self.run.name} in a coded domain the run takes.")
        return None


def _value(kind: str, codes: list[str]) -> object:
    if kind == SET:
        return frozenset(codes)
    return codes[0] if codes else None


def _text(value: object) -> str:
    if value is None:
        return ""
    return ", ".join(sorted(value)) if isinstance(value, frozenset) else str(value)


def _outcomes_sql(annotators: int) -> str:
    """The run's outcomes of one domain by its annotators: naming them lets the (run, annotator, domain) index
    find the domain's rows, where (run, domain) alone reads every outcome of the run, each domain over again."""
    return (f"SELECT sample_id, annotator_id, status, labels, reason, confidence FROM {Outcome._meta.db_table} "
            f"WHERE run_id = %s AND annotator_id IN ({', '.join(['%s'] * annotators)}) AND domain_id = %s")


@dataclass
class _Stored:
    """Per annotator number, one entry per reference item: the label (None: none or malformed), the status ("": no
    outcome, "ok", "malformed", "refusal") and the label's confidence (None: none stored)."""

    labels: dict[int, list]
    statuses: dict[int, list[str]]
    confidences: dict[int, list[float | None]]


def _outcomes(run: Run, domain_id: int, kind: str, samples: dict[int, int], annotators: dict[int, int]) -> _Stored:
    """One plain query; each distinct label decoded once."""
    stored = _Stored(*({number: [empty] * len(samples) for number in annotators.values()}
                       for empty in (None, "", None)))
    decoded: dict[str, object] = {}
    if not annotators:
        return stored
    with connection.cursor() as cursor:
        cursor.execute(_outcomes_sql(len(annotators)), [run.pk, *annotators, domain_id])
        rows = cursor.fetchall()  # at once: iterating Django's cursor wrapper costs a generator step per row
    for sample_id, annotator_id, status, given, reason, confidence in rows:
        index, number = samples.get(sample_id), annotators.get(annotator_id)
        if index is None or number is None:
            continue
        stored.statuses[number][index] = REFUSAL if reason == REFUSAL else status
        if status == Outcome.Status.OK:
            key = given if isinstance(given, str) else json.dumps(given)
            if key not in decoded:
                decoded[key] = _value(kind, json.loads(key))
            stored.labels[number][index] = decoded[key]
            stored.confidences[number][index] = confidence
    return stored


def _categories(domain: Domain, reference: list[list[object]], given: list[list[object]]) -> list[str]:
    """The run's codes in its order, then any other code a label holds (the live catalogue may have moved on)."""
    codes = list(allowed_codes(domain))
    distinct = dict.fromkeys(value for rows in (reference, given) for row in rows for value in row)
    distinct.pop(None, None)
    seen = [code for value in distinct for code in (value if isinstance(value, frozenset) else (value,))]
    return codes + [code for code in dict.fromkeys(seen) if code not in codes]


def _distances(on: Scale) -> np.ndarray:
    """How wrong a label is against another, for the worst-items list: levels apart (ordinal), 0/1 (nominal), the
    MASI distance (sets)."""
    return np.sqrt(on.disagreement) if on.kind == ORDINAL else on.disagreement


def _worst(on: Scale, given: np.ndarray, reference: np.ndarray, samples: list[tuple[int, str]],
           keep: int) -> list[WrongItem]:
    present = reference >= 0
    counted = present.sum(axis=1)
    usable = (given >= 0) & (counted > 0)
    distance = np.zeros(len(given))
    table = _distances(on)
    rows = np.flatnonzero(usable)
    distance[rows] = (table[given[rows][:, None], np.where(present[rows], reference[rows], 0)]
                      * present[rows]).sum(axis=1) / counted[rows]
    wrong = np.flatnonzero(distance > 0)
    chosen = sorted(wrong, key=lambda i: (-distance[i], samples[i][1]))[:keep]
    return [WrongItem(*samples[i], _text(on.values[given[i]]),
                      "; ".join(_text(on.values[t]) for t in reference[i] if t >= 0), float(distance[i]))
            for i in chosen]


def _calibration(encoded: np.ndarray, reference: np.ndarray, confidences: list[float | None] | None
                 ) -> Calibration | None:
    """The reliability table of the labels that have a confidence, one comparison per reference rater (as the
    quality figures count them); None where no compared label has a confidence."""
    if confidences is None:
        return None
    known = np.array([value is not None for value in confidences], dtype=bool)
    compared = (reference >= 0) & ((encoded >= 0) & known)[:, None]
    if not compared.any():
        return None
    items, _ = np.nonzero(compared)
    values = np.array([0.0 if value is None else value for value in confidences])
    return calibration(values[items], (reference == encoded[:, None])[compared])


def _row(name: str, kind: str, annotator: int | None, given: list[object], statuses: list[str] | None,
         confidences: list[float | None] | None, context: dict) -> Row:
    prepared, bootstrap = context["reference"], context["bootstrap"]
    on, reference = prepared.scale, prepared.labels
    encoded = on.encode(given)
    result = scored(encoded, prepared)
    if statuses is None:  # a consensus: never malformed, never a refusal
        answered = int((encoded >= 0).sum())
        malformed = refused = Estimate(None)
    else:
        answered_items = [bool(s) for s in statuses]
        answered = sum(answered_items)
        malformed, refused = shares([[bool(s) and s != Outcome.Status.OK for s in statuses],
                                     [s == REFUSAL for s in statuses]], answered_items, bootstrap=bootstrap)
    return Row(name, kind, annotator, result, answered, malformed, refused,
               _worst(on, encoded, reference, context["samples"], context["keep"]),
               _calibration(encoded, reference, confidences))


def _alt_tests(on: Scale, labels: dict[int, list], reference: np.ndarray, raters: list[str],
               epsilon: float) -> list[AltTestRow]:
    similarity = 1.0 - on.disagreement if on.kind == SET else np.eye(len(on.values))
    return [AltTestRow(number, encoded_alt_test(on.encode(given), reference, similarity, raters, epsilon=epsilon))
            for number, given in labels.items()]


def _domain_quality(run: Run, domain: Domain, reference_set: ReferenceSet, members: set[int] | None,
                    annotators: dict[int, int], options: dict) -> DomainQuality | None:
    kind = KINDS.get(domain.kind)
    if kind is None:
        return None
    found = {sample_id: labels for sample_id, labels in reference_labels(reference_set, domain.pk).items()
             if members is None or sample_id in members}
    if not found:
        return None
    samples = {sample_id: index for index, sample_id in enumerate(sorted(found))}
    raters = sorted({rater for labelled in found.values() for rater, _ in labelled})
    by_rater = [dict(found[s]) for s in samples]
    reference = [[_value(kind, labelled[r]) if r in labelled else None for r in raters] for labelled in by_rater]
    stored = _outcomes(run, domain.pk, kind, samples, annotators)
    # An annotator with no outcome on the reference's items has nothing to be measured by.
    labels = {number: given for number, given in stored.labels.items() if any(stored.statuses[number])}
    rows = [(f"annotator {number}", ANNOTATOR, number, given, stored.statuses[number], stored.confidences[number])
            for number, given in labels.items()]
    if len(labels) > 1:
        columns = list(labels.values())
        majority = majority_labels(columns)
        codes = _categories(domain, reference, columns)
        rows += [("majority vote", MAJORITY, None, majority, None, None),
                 ("Dawid–Skene", DAWID_SKENE, None, dawid_skene_labels(columns, kind=kind, categories=codes), None,
                  None)]
    codes = _categories(domain, reference, [row[3] for row in rows])
    on = scale(kind, codes, [v for row in rows for v in row[3]] + [v for item in reference for v in item])
    encoded_reference = np.array([on.encode(item) for item in reference], dtype=np.int64).reshape(len(reference),
                                                                                                len(raters))
    names = options["samples"]
    context = {"reference": prepare(encoded_reference, on, bootstrap=options["bootstrap"]),
               "bootstrap": options["bootstrap"],
               "samples": [(pk, names[pk]) for pk in samples], "keep": options["worst"]}
    result = DomainQuality(domain, len(samples), int((encoded_reference >= 0).sum(axis=1).max()))
    result.rows = [_row(*row, context) for row in rows]
    if result.most_raters >= MIN_RATERS_FOR_ALT_TEST:
        result.alt_tests = _alt_tests(on, labels, encoded_reference, raters, options["epsilon"])
    return result


def run_quality(run: Run, reference_set: ReferenceSet, *, bootstrap: int = 1000, worst: int = WORST_KEPT,
                epsilon: float | None = None) -> RunQuality:
    """Every domain of ``run`` that ``reference_set`` labels samples of (the run's samples only)."""
    epsilon = EPSILON.get(reference_set.kind, 0.2) if epsilon is None else epsilon
    members = None if run.all_samples else set(run.members.values_list("sample_id", flat=True))
    annotators = {a.pk: a.number for a in run_annotators(run)}
    labelled = set(ReferenceLabel.objects.filter(reference_set=reference_set).values_list("domain_id", flat=True)
                   .distinct())
    options = {"bootstrap": bootstrap, "worst": worst, "epsilon": epsilon, "samples": reference_samples(reference_set)}
    # The matrix products here are a few million cells each: BLAS threads only spin against each other (measured:
    # a third more CPU with two threads on two busy cores), so one thread does them.
    with threadpool_limits(limits=1, user_api="blas"):
        domains = [found for domain in run_domains(run) if domain.pk in labelled
                   and (found := _domain_quality(run, domain, reference_set, members, annotators, options))]
    return RunQuality(run, reference_set, domains, epsilon, bootstrap)


# ------------------------------------------------------------------------------------------------ as a document


def _estimate(estimate: Estimate) -> dict:
    return {"value": estimate.value, "ci95": [estimate.ci95.low, estimate.ci95.high]}


def _row_document(row: Row) -> dict:
    result = row.result
    return {
        "name": row.name, "kind": row.kind, "annotator": row.annotator, "answered": row.answered,
        "items": result.items, "n": result.n, "accuracy": _estimate(result.accuracy),
        "macro_f1": _estimate(result.macro_f1), "kappa": _estimate(result.kappa),
        "kappa_weights": result.kappa_weights, "malformed": _estimate(row.malformed),
        "refused": _estimate(row.refused),
        "per_class": [{"label": c.label, "support": c.support, "predicted": c.predicted,
                       "precision": _estimate(c.precision), "recall": _estimate(c.recall), "f1": _estimate(c.f1)}
                      for c in result.per_class],
        "confusion": {"labels": list(result.labels), "rows_reference_columns_given": [list(r) for r in
                                                                                      result.confusion]},
        "worst": [{"sample": w.external_id, "given": w.given, "reference": w.reference, "distance": w.distance}
                  for w in row.worst],
        "calibration": _calibration_document(row.calibration)}


def _calibration_document(found: Calibration | None) -> dict | None:
    if found is None:
        return None
    return {"n": found.n, "ece": found.ece,
            "bins": [{"low": b.low, "high": b.high, "count": b.count, "mean_confidence": b.mean_confidence,
                      "accuracy": b.accuracy} for b in found.bins]}


def _alt_document(row: AltTestRow) -> dict:
    result = row.result
    return {"annotator": row.annotator, "epsilon": result.epsilon, "q": result.q, "passed": result.passed,
            "winning_rate": result.winning_rate, "advantage_probability": result.advantage_probability,
            "raters": [{"rater": r.rater, "items": r.items, "llm_advantage": r.llm_advantage,
                        "rater_advantage": r.rater_advantage, "p_value": r.p_value, "wins": r.wins}
                       for r in result.raters]}


def quality_document(found: RunQuality) -> dict:
    """The whole result as plain JSON values (the command's --json and the API)."""
    reference = found.reference_set
    return {
        "run": found.run.name, "bootstrap": found.bootstrap,
        "reference": {"name": reference.name, "kind": reference.kind, "source": reference.source,
                      "licence": reference.licence, "citation": reference.citation, "raters": reference.raters,
                      "value_map": reference.value_map},
        "domains": [{"domain": d.slug, "kind": d.domain.kind, "reference_items": d.reference_items,
                     "most_raters_per_item": d.most_raters, "rows": [_row_document(r) for r in d.rows],
                     "alt_test": [_alt_document(a) for a in d.alt_tests]} for d in found.domains]}
