"""train_baseline: an annotator's next trained-baseline version, learned from a reference set, with its k-fold
cross-validated quality on that set, stored as a file under DATA_DIR and a TrainedBaseline row, and audited.

Everything that can be refused is checked before any model is fitted: the folds, each domain's labels (a domain
with too few is left out and named; a set with no learnable domain is refused). Fitting runs with no transaction
open (it takes seconds to minutes; SQLite must keep taking the workers' writes); the row, the annotator's new
version and the audit row then commit together. A failure leaves the store as it was (at worst an unreferenced
model file, never a half-written one).
"""

from __future__ import annotations

import hashlib
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

from django.db import IntegrityError
from django.db.models import Max

from audit.actions import Action
from audit.actors import Actor, actor_name
from audit.services import audited
from stats.quality import Estimate, QualityResult
from workers_app.models import Annotator, Domain, ReferenceSet, Sample, TrainedBaseline
from workers_app.references.quality import KINDS
from workers_app.references.selectors import reference_labels

from .files import model_bytes, model_file_name, write_model
from .training import DomainData, class_of, cross_validated, fit, learned_label, too_few, value_of

MIN_FOLDS, MAX_FOLDS = 2, 20


class BaselineRefused(ValueError):
    """Training was refused before anything changed; the message names the reason."""


@dataclass(frozen=True)
class TrainingPlan:
    """What a reference set offers to learn: each learnable domain's data, and each other domain with why not."""

    domains: list[DomainData]
    skipped: dict[str, str]

    def fits(self, folds: int) -> int:
        """Models to fit: one per fold and domain, and each domain's final one."""
        return (folds + 1) * len(self.domains)


def _domain_data(domain: Domain, reference_set: ReferenceSet) -> tuple[DomainData | None, str | None]:
    kind = KINDS.get(domain.kind)
    if kind is None:
        return None, "free-text labels: nothing to classify"
    found = reference_labels(reference_set, domain.pk)
    texts = dict(Sample.objects.filter(reference_labels__reference_set=reference_set,
                                       reference_labels__domain=domain).values_list("pk", "text").distinct())
    items = sorted(sample_id for sample_id, labelled in found.items() if any(codes for _, codes in labelled))
    codes = tuple(domain.code_list)
    raters = [[labels for _, labels in found[sample_id] if labels] for sample_id in items]
    targets = [learned_label(labelled, kind, codes) for labelled in raters]
    reason = too_few(targets)
    if reason:
        return None, reason
    reference = [[value_of(class_of(labels, kind, codes), kind) for labels in labelled] for labelled in raters]
    return DomainData(domain.slug, kind, codes, [texts[s] for s in items], targets, reference), None


def training_plan(reference_set: ReferenceSet) -> TrainingPlan:
    labelled = set(reference_set.labels.values_list("domain_id", flat=True).distinct())
    domains, skipped = [], {}
    for domain in Domain.objects.filter(pk__in=labelled).order_by("position", "slug"):
        data, reason = _domain_data(domain, reference_set)
        if data is None:
            skipped[domain.slug] = reason
        else:
            domains.append(data)
    return TrainingPlan(domains, skipped)


def _estimate(estimate: Estimate) -> dict:
    return {"value": estimate.value, "ci95": [estimate.ci95.low, estimate.ci95.high]}


def _figures(data: DomainData, result: QualityResult) -> dict:
    return {"items": len(data.targets), "classes": sorted(set(data.targets)), "kind": data.kind, "n": result.n,
            "accuracy": _estimate(result.accuracy), "macro_f1": _estimate(result.macro_f1),
            "kappa": _estimate(result.kappa), "kappa_weights": result.kappa_weights}


def checked_folds(folds: object) -> int:
    if isinstance(folds, bool) or not isinstance(folds, int) or not MIN_FOLDS <= folds <= MAX_FOLDS:
        raise BaselineRefused(f"folds {folds!r:.20}: give a whole number from {MIN_FOLDS} to {MAX_FOLDS}")
    return folds


def _refusal(reference_set: ReferenceSet, plan: TrainingPlan, folds: int) -> str | None:
    """Why ``plan`` cannot be learned with ``folds`` folds, or None."""
    if not plan.domains:
        reasons = "; ".join(f"{slug}: {why}" for slug, why in plan.skipped.items()) or "it holds no labels"
        return f"reference set {reference_set.name} has nothing to learn from ({reasons})"
    # Stratified folds need some label given to at least as many items as there are folds.
    short = [f"{d.slug}'s most common label is given to {top} item(s)" for d in plan.domains
             if (top := max(Counter(d.targets).values())) < folds]
    if short:
        return f"{folds} folds need a label given to at least {folds} items in each domain: {'; '.join(short)}"
    return None


def train_baseline(annotator: Annotator, reference_set: ReferenceSet, *, actor: Actor, folds: int = 5,
                   bootstrap: int = 1000, progress: Callable[[int], None] | None = None,
                   plan: TrainingPlan | None = None) -> TrainedBaseline:
    """Learn ``reference_set`` (``plan``: its ``training_plan``, when the caller has read it) as ``annotator``'s
    next version; ``progress`` is called once per model fitted (``plan.fits(folds)`` in all)."""
    folds = checked_folds(folds)
    plan = plan or training_plan(reference_set)
    refusal = _refusal(reference_set, plan, folds)
    if refusal:
        raise BaselineRefused(refusal)
    with audited(Action.TRAIN_BASELINE, actor=actor, target=f"annotator {annotator.number}", atomic=False,
                 parameters={"reference": reference_set.name, "folds": folds}) as entry:
        started = time.monotonic()
        learned, figures = {}, {}
        for data in plan.domains:
            figures[data.slug] = _figures(data, cross_validated(data, folds, bootstrap=bootstrap, progress=progress))
            learned[data.slug] = {"kind": data.kind, "model": fit(data.texts, data.targets)}
            if progress:
                progress(1)
        version = (annotator.baselines.aggregate(last=Max("version"))["last"] or 0) + 1
        content = model_bytes(annotator.number, version, {"domains": learned})
        relative = model_file_name(annotator.number, version, content)
        write_model(relative, content)
        try:
            with entry.commit():
                row = TrainedBaseline.objects.create(
                    annotator=annotator, version=version, reference_set=reference_set,
                    reference_name=reference_set.name, folds=folds, domains=figures, skipped=plan.skipped,
                    file_name=relative, sha256=hashlib.sha256(content).hexdigest(), size=len(content),
                    seconds=round(time.monotonic() - started, 3), trained_by=actor_name(actor))
                Annotator.objects.filter(pk=annotator.pk).update(baseline_version=version)
                entry.detail = {"version": version, "file": relative, "domains": {
                    slug: {name: found[name]["value"] for name in ("accuracy", "macro_f1", "kappa")}
                    for slug, found in figures.items()}, "skipped": plan.skipped}
        except IntegrityError:
            raise BaselineRefused(f"another training of annotator {annotator.number} stored version {version} "
                                  "first; train again") from None
    annotator.baseline_version = version
    return row
