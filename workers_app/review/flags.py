"""Which samples a clinician must read first, decided as their outcomes are stored and re-derived from the store.

A sample is flagged when an annotator rates its urgency LEVEL_4, when an answer reads as a refusal, when its
stored urgency labels lie two or more levels apart, and, where a domain sets the thresholds, when a stored label's
confidence (its probability from the model's logprobs) is below the domain's ``review_below_confidence``
(low_confidence) or when, once every enabled annotator of the run has answered, the share of annotators agreeing
with the majority label is below the domain's ``review_below_agreement`` (annotators_disagree). The store is the
source of truth: ``flag_stored`` is the fast path after each message, ``sync_review_items`` derives every flag from
the store again (after a worker was killed between its INSERT and its flag, or a flag failed), so the two must
agree.

Concurrent flaggers of one sample never lose a reason: the item is inserted once (unique sample, conflicts
ignored) and its ``reasons``, ``spread`` and ``risk`` change only by compare-and-set UPDATEs, one statement each in autocommit,
retried when another process changed the row in between.
"""

from __future__ import annotations

import logging
from collections import Counter, defaultdict
from collections.abc import Collection, Iterable
from dataclasses import dataclass, field

from django.db import DatabaseError
from django.db.models import F, QuerySet
from redis.exceptions import RedisError

from workers_app.engine.keys import redis_key
from workers_app.engine.parsing import REFUSAL
from workers_app.models import Annotator, Domain, Outcome, ReviewItem, Run
from workers_app.redis_client import get_redis

log = logging.getLogger(__name__)

URGENCY = "urgency"
CRITICAL_CODE = "LEVEL_4"
MIN_SPREAD = 2

LEVEL_4 = "level_4"
URGENCY_SPREAD = "urgency_spread"
ANNOTATORS_DISAGREE = "annotators_disagree"
LOW_CONFIDENCE = "low_confidence"
REASONS = (LEVEL_4, URGENCY_SPREAD, ANNOTATORS_DISAGREE, LOW_CONFIDENCE, REFUSAL)  # the queue's order of concern

# Risk orders the queue: any LEVEL_4 above everything else, then the size of the urgency spread (a clinical
# disagreement about risk itself), then annotators who disagree in any domain, then a label its model was unsure
# of, then a refusal. The last three add up to 7, below the smallest spread (20) and below "medium" (10), so they
# order the low-risk items among themselves and never outrank a risk the urgency labels show.
CRITICAL_RISK = 100
SPREAD_RISK = 10
DISAGREE_RISK = 4
LOW_CONFIDENCE_RISK = 2
REFUSAL_RISK = 1
MIN_VOTES = 2  # a majority of one answer agrees with itself: disagreement needs two answers at least
_CAS_TRIES = 20
_MERGED = ("id", "sample_id", "reasons", "spread", "risk")
# While this key lives the beat sweep skips its sync; a failed flag deletes it, so the next sweep syncs at once.
SYNC_THROTTLE_KEY = redis_key("review", "sync-throttle")


def risk_of(reasons: Iterable[str], spread: int) -> int:
    reasons = set(reasons)
    return (CRITICAL_RISK * (LEVEL_4 in reasons) + SPREAD_RISK * spread * (URGENCY_SPREAD in reasons)
            + DISAGREE_RISK * (ANNOTATORS_DISAGREE in reasons) + LOW_CONFIDENCE_RISK * (LOW_CONFIDENCE in reasons)
            + REFUSAL_RISK * (REFUSAL in reasons))


def risk_level(risk: int) -> str:
    """The word for a risk (also the badge class ``risk-<word>``)."""
    if risk >= CRITICAL_RISK:
        return "high"
    return "medium" if risk >= SPREAD_RISK else "low"


def describe(reasons: Iterable[str], spread: int) -> str:
    """Why a human must read the sample first, in words (the workbook's Review sheet and the queue)."""
    words = {LEVEL_4: "LEVEL_4 given", URGENCY_SPREAD: f"labels {spread} levels apart",
             ANNOTATORS_DISAGREE: "the annotators disagree", LOW_CONFIDENCE: "an annotator was unsure of its label",
             REFUSAL: "an answer reads as a refusal"}
    return "; ".join(words[reason] for reason in ordered(reasons))


def ordered(reasons: Iterable[str]) -> list[str]:
    reasons = set(reasons)
    return [reason for reason in REASONS if reason in reasons]


@dataclass
class Finding:
    """Why one sample needs a clinician, as far as the outcomes read so far tell (a refusal alone does not read
    the urgency labels: its spread is 0, and the item keeps the spread it has)."""

    reasons: set[str] = field(default_factory=set)
    spread: int = 0


def judge_urgency(labels: list[str], codes: list[str]) -> Finding:
    """The finding of one sample's stored urgency labels (one code each, in the domain's ordinal order)."""
    rank = {code: index for index, code in enumerate(codes)}
    ranks = [rank[label] for label in labels if label in rank]
    finding = Finding(spread=max(ranks) - min(ranks) if ranks else 0)
    if CRITICAL_CODE in labels:
        finding.reasons.add(LEVEL_4)
    if finding.spread >= MIN_SPREAD:
        finding.reasons.add(URGENCY_SPREAD)
    return finding


def _urgency_findings(domain: Domain, outcomes) -> dict[int, Finding]:
    """Labels are compared within a run (two runs of one annotator are not two opinions); a sample keeps the
    largest spread and every reason any run gives it."""
    labels: dict[tuple[int, int], list[str]] = defaultdict(list)
    for run_id, sample_id, given in outcomes.filter(domain=domain, status=Outcome.Status.OK).values_list(
            "run_id", "sample_id", "labels"):
        labels[run_id, sample_id] += given[:1]
    found: dict[int, Finding] = {}
    for (_, sample_id), given in labels.items():
        finding = judge_urgency(given, domain.code_list)
        if finding.reasons:
            merged = found.setdefault(sample_id, Finding())
            merged.reasons |= finding.reasons
            merged.spread = max(merged.spread, finding.spread)
    return found


def _low_confidence(outcomes: QuerySet[Outcome]) -> set[int]:
    """Samples with a stored label whose confidence is below its domain's threshold (one query; a domain
    without a threshold compares with NULL, which matches nothing)."""
    low = outcomes.filter(status=Outcome.Status.OK, confidence__lt=F("domain__review_below_confidence"))
    return set(low.values_list("sample_id", flat=True).distinct())


def _expected_answers(run_ids: Collection[int]) -> dict[int, int]:
    """How many answers make a sample's set complete in each run: one from each of its enabled annotators (a
    disabled one will not answer; one disabled after answering still counts, as answers only ever add up)."""
    enabled = list(Annotator.objects.filter(enabled=True).values_list("number", flat=True))
    return {run_id: len(enabled) if all_samples else len(set(enabled) & set(numbers))
            for run_id, all_samples, numbers in Run.objects.filter(pk__in=run_ids).values_list(
                "pk", "all_samples", "annotators")}


def majority_share(labels: list[tuple[str, ...]]) -> float | None:
    """The share of answers that give the most common label (a set of codes is one label); None below
    MIN_VOTES answers."""
    if len(labels) < MIN_VOTES:
        return None
    return Counter(labels).most_common(1)[0][1] / len(labels)


def _disagreeing(outcomes: QuerySet[Outcome], thresholds: dict[int, float]) -> set[int]:
    """Samples whose stored labels in a domain with an agreement threshold (domain id -> threshold) agree less
    than it, within one run, once every annotator expected has answered (before that the share still moves both
    ways, and a flag once raised stays). Malformed answers count towards the complete set but give no label."""
    if not thresholds:
        return set()
    answered: dict[tuple[int, int, int], int] = Counter()
    given: dict[tuple[int, int, int], list[tuple[str, ...]]] = defaultdict(list)
    for run_id, sample_id, domain_id, status, labels in outcomes.filter(domain_id__in=thresholds).values_list(
            "run_id", "sample_id", "domain_id", "status", "labels"):
        answered[run_id, sample_id, domain_id] += 1
        if status == Outcome.Status.OK:
            given[run_id, sample_id, domain_id].append(tuple(sorted(labels)))
    expected = _expected_answers({run_id for run_id, _, _ in answered})
    found = set()
    for (run_id, sample_id, domain_id), count in answered.items():
        share = majority_share(given[run_id, sample_id, domain_id])
        if count >= expected.get(run_id, 0) and share is not None and share < thresholds[domain_id]:
            found.add(sample_id)
    return found


def _routed(outcomes: QuerySet[Outcome], findings: dict[int, Finding], *, confidence: bool,
            agreement: dict[int, float]) -> None:
    """Add the reasons the domains' thresholds route to review (only the checks asked for: each is a query)."""
    for sample_id in _low_confidence(outcomes) if confidence else ():
        findings.setdefault(sample_id, Finding()).reasons.add(LOW_CONFIDENCE)
    for sample_id in _disagreeing(outcomes, agreement):
        findings.setdefault(sample_id, Finding()).reasons.add(ANNOTATORS_DISAGREE)


def flag_stored(rows: list[dict]) -> int:
    """Flag the samples of one message's outcome rows (stored before this is called, by this message or by an
    earlier copy of it); return how many items were made or extended.

    Costs nothing for a message without urgency rows, refusals or a review threshold that applies to it, else one
    query for the samples' stored urgency labels, one for low confidence, three for agreement, and one for their
    items; an INSERT and UPDATEs only when an item is new or gains something. A database error propagates (the
    task retries its message, which finds its outcomes stored and flags nothing), so it also asks the next sweep to
    sync at once.
    """
    try:
        return _flag(rows)
    except DatabaseError:
        request_sync()
        raise


def request_sync() -> None:
    try:
        get_redis().delete(SYNC_THROTTLE_KEY)
    except RedisError as exc:
        log.warning("review sync not requested (%s); the periodic one follows within its period", exc)


def _flag(rows: list[dict]) -> int:
    findings: dict[int, Finding] = defaultdict(Finding)
    for fields in rows:
        if fields["reason"] == REFUSAL:
            findings[fields["sample"].pk].reasons.add(REFUSAL)
    urgency = next((fields["domain"] for fields in rows if fields["domain"].slug == URGENCY), None)
    if urgency is not None:
        samples = {fields["sample"].pk for fields in rows if fields["domain"].pk == urgency.pk}
        for sample_id, finding in _urgency_findings(urgency, Outcome.objects.filter(sample_id__in=samples)).items():
            findings[sample_id].reasons |= finding.reasons
            findings[sample_id].spread = finding.spread
    # The thresholds as this process's catalogue rows hold them decide whether to look (nothing to query while
    # they are off); what is flagged is read from the store, as the sync reads it.
    confident = [fields for fields in rows if fields.get("confidence") is not None
                 and fields["domain"].review_below_confidence is not None]
    agreement = {fields["domain"].pk: fields["domain"].review_below_agreement for fields in rows
                 if fields["domain"].review_below_agreement is not None}
    if confident or agreement:
        samples = {fields["sample"].pk for fields in rows}
        _routed(Outcome.objects.filter(sample_id__in=samples), findings, confidence=bool(confident),
                agreement=agreement)
    if not findings:
        return 0
    existing = ReviewItem.objects.filter(sample_id__in=findings)
    return _merge(findings, {item.sample_id: item for item in existing.only(*_MERGED)})


def findings_in_store(sample_ids: Collection[int] | None = None) -> dict[int, Finding]:
    """Every sample's finding (or these samples'), derived from the stored outcomes (five queries; three more where
    a domain sets an agreement threshold)."""
    outcomes = Outcome.objects.all() if sample_ids is None else Outcome.objects.filter(sample_id__in=sample_ids)
    urgency = Domain.objects.filter(slug=URGENCY).first()
    findings = _urgency_findings(urgency, outcomes) if urgency else {}
    refused = outcomes.filter(status=Outcome.Status.MALFORMED, reason=REFUSAL).values_list("sample_id", flat=True)
    for sample_id in refused.distinct():
        findings.setdefault(sample_id, Finding()).reasons.add(REFUSAL)
    agreement = dict(Domain.objects.filter(review_below_agreement__isnull=False).values_list(
        "pk", "review_below_agreement"))
    _routed(outcomes, findings, confidence=True, agreement=agreement)
    return findings


def flag_redelivered(sample_ids: Collection[int]) -> int:
    """Flag samples a redelivered message found stored already: the copy that stored them may have died between
    its INSERT and its flag, so the store decides, at once rather than at the next sweep."""
    if not sample_ids:
        return 0
    findings = findings_in_store(sample_ids)
    if not findings:
        return 0
    return _merge(findings, {item.sample_id: item for item in
                             ReviewItem.objects.filter(sample_id__in=findings).only(*_MERGED)})


def sync_review_items() -> int:
    """Make or extend every item the store calls for (a flag lost to a kill or a failure); return how many."""
    items = ReviewItem.objects.only(*_MERGED)
    changed = _merge(findings_in_store(), {item.sample_id: item for item in items})
    if changed:
        log.info("review sync: %d item(s) made or extended from the store", changed)
    return changed


def _merge(findings: dict[int, Finding], existing: dict[int, ReviewItem]) -> int:
    new = [ReviewItem(sample_id=sample_id, reasons=ordered(finding.reasons), spread=finding.spread,
                      risk=risk_of(finding.reasons, finding.spread))
           for sample_id, finding in findings.items() if sample_id not in existing]
    touched = {item.sample_id for item in new}
    if new:
        # A concurrent flagger may insert the same sample first: its row wins and is extended below.
        ReviewItem.objects.bulk_create(new, ignore_conflicts=True)
        raced = ReviewItem.objects.filter(sample_id__in=touched).only(*_MERGED)
        existing.update((item.sample_id, item) for item in raced)
    touched |= {sample_id for sample_id, finding in findings.items()
                if sample_id in existing and _extend(existing[sample_id], finding)}
    return len(touched)


def _extend(item: ReviewItem, finding: Finding) -> bool:
    """Add the finding's reasons and spread to the item, by compare-and-set: a concurrent change of the row makes
    the UPDATE match nothing, and it is read again and retried. Reasons and spread only grow."""
    for _ in range(_CAS_TRIES):
        reasons = ordered({*item.reasons, *finding.reasons})
        spread = max(item.spread, finding.spread)
        risk = risk_of(reasons, spread)
        if (reasons, spread, risk) == (item.reasons, item.spread, item.risk):
            return False
        if ReviewItem.objects.filter(pk=item.pk, reasons=item.reasons, spread=item.spread, risk=item.risk).update(
                reasons=reasons, spread=spread, risk=risk):
            return True
        item = ReviewItem.objects.filter(pk=item.pk).only(*_MERGED).first()
        if item is None:
            return False  # deleted with its sample, or behind our back: the next sync makes it again
    raise RuntimeError(f"review item {item.pk}: {_CAS_TRIES} concurrent changes in a row")
