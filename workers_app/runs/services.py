"""Named runs: make one, make one current (the fleet then works on it), delete one. Each audited."""

from __future__ import annotations

import random
import shutil
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from audit.actions import Action
from audit.actors import Actor, actor_name
from audit.services import audited
from workers_app.engine.gold import forget_gold
from workers_app.engine.queues import populate_keys, purge_queue, sync_keys, worker_keys
from workers_app.fleet.rows import key_of
from workers_app.models import Annotator, Corpus, Domain, Run, RunSample, Sample, Worker
from workers_app.models.runs import RESERVED_NAMES, RUN_NAME
from workers_app.runs.current import current_run, forget_cached_runs, pin
from workers_app.runs.files import run_dir
from workers_app.runs.gold import GoldPlan, GoldRefused, choose_gold
from workers_app.runs.record import code_version

MEMBER_BATCH = 2000


class RunRefused(ValueError):
    """A run that cannot be made, switched to or deleted as asked; the message says why."""


@dataclass
class RunPlan:
    """What a new run takes, checked: ``create_run`` stores exactly this."""

    name: str
    description: str = ""
    annotators: list[int] = field(default_factory=list)
    domains: list[str] = field(default_factory=list)
    corpora: list[int] = field(default_factory=list)
    share: float | None = None
    seed: int = 0
    limit: int | None = None
    budget: Decimal | None = None
    gold: GoldPlan | None = None


def _check_name(name: str) -> None:
    try:
        RUN_NAME(name)
    except ValidationError as exc:
        raise RunRefused(f"run name {name!r:.50}: {exc.messages[0]}") from None
    if name in RESERVED_NAMES:
        raise RunRefused(f"run name {name!r}: reserved for a page of the workspace (/runs/{name}/); choose another")
    if Run.objects.filter(name=name).exists():
        raise RunRefused(f"a run named {name!r} exists already")


def _known(asked: list, known: list, what: str) -> list:
    unknown = [value for value in asked if value not in known]
    if unknown:
        raise RunRefused(f"no {what} {', '.join(map(str, unknown))}; the {what}s are "
                         f"{', '.join(map(str, known)) or 'none'}")
    return [value for value in known if value in asked] if asked else list(known)


def _check_numbers(plan: RunPlan) -> None:
    if plan.share is not None and not 0 < plan.share <= 1:
        raise RunRefused(f"share {plan.share}: give a fraction above 0 and at most 1, e.g. 0.1 for a tenth")
    if plan.limit is not None and plan.limit < 1:
        raise RunRefused(f"limit {plan.limit}: give at least 1 sample")
    if plan.budget is not None:
        try:
            Run._meta.get_field("budget").clean(plan.budget, None)
        except (ValidationError, InvalidOperation) as exc:
            raise RunRefused(f"budget {plan.budget}: {'; '.join(getattr(exc, 'messages', [str(exc)]))}") from None


def chosen_samples(plan: RunPlan) -> list[int]:
    """The sample ids the plan takes: the corpora asked for (all when none), then a seeded random share, then the
    first ``limit`` of those, in id order. The same plan on the same store always takes the same samples."""
    ids = list(Sample.objects.filter(**({"corpus_id__in": plan.corpora} if plan.corpora else {}))
               .order_by("id").values_list("id", flat=True))
    if plan.share is not None:
        ids = sorted(random.Random(plan.seed).sample(ids, round(len(ids) * plan.share)))
    return ids[: plan.limit] if plan.limit is not None else ids


def _gold_samples(plan: RunPlan, samples: list[int]) -> list[int]:
    if plan.gold is None:
        return []
    try:
        plan.gold.check()
        return choose_gold(plan.gold, plan.domains, len(samples), plan.seed)
    except GoldRefused as exc:
        raise RunRefused(str(exc)) from None


def checked(plan: RunPlan) -> tuple[RunPlan, list[int]]:
    """The plan with its annotators and domains spelt out (all when none was named) and its samples; RunRefused
    names the first thing wrong."""
    _check_name(plan.name)
    _check_numbers(plan)
    plan.annotators = _known(plan.annotators, list(Annotator.objects.values_list("number", flat=True)),
                             "annotator")
    plan.domains = _known(plan.domains, list(Domain.objects.values_list("slug", flat=True)), "domain")
    _known(plan.corpora, list(Corpus.objects.values_list("pk", flat=True)), "corpus")
    samples = chosen_samples(plan)
    if not samples:
        raise RunRefused("this choice takes no sample: import a corpus first, or choose a larger share or limit")
    return plan, samples


def create_run(plan: RunPlan, *, actor: Actor) -> Run:
    """Make a run of the plan, pinning the prompts and model settings the catalogue has now; it does not become
    current (``switch_run`` does that)."""
    parameters = {"name": plan.name, "annotators": plan.annotators, "domains": plan.domains,
                  "corpora": plan.corpora, "share": plan.share, "seed": plan.seed, "limit": plan.limit,
                  "budget": None if plan.budget is None else str(plan.budget)}
    if plan.gold is not None:
        parameters["gold"] = {"reference": plan.gold.reference.name, "share": plan.gold.share,
                              "threshold": plan.gold.threshold, "min_items": plan.gold.min_items,
                              "window": plan.gold.window}
    with audited(Action.CREATE_RUN, actor=actor, target=plan.name, parameters=parameters) as entry:
        current_run()  # a store's first run must not leave it without a current one: the default run exists first
        plan, samples = checked(plan)
        gold = set(_gold_samples(plan, samples))
        members = sorted(gold.union(samples))
        annotators = list(Annotator.objects.filter(number__in=plan.annotators))
        domains = list(Domain.objects.filter(slug__in=plan.domains))
        run = Run.objects.create(
            name=plan.name, description=plan.description, annotators=plan.annotators, domains=plan.domains,
            selection={"corpora": plan.corpora, "share": plan.share, "seed": plan.seed, "limit": plan.limit,
                       "samples": len(members), **({"gold_items": len(gold)} if gold else {})},
            pinned=pin(annotators, domains), code_version=code_version(), budget=plan.budget,
            created_by=actor_name(actor), **(plan.gold.as_fields() if plan.gold else {}))
        RunSample.objects.bulk_create((RunSample(run=run, sample_id=sample_id, gold=sample_id in gold)
                                       for sample_id in members), batch_size=MEMBER_BATCH)
        entry.detail = {"samples": len(members), "gold_items": len(gold),
                        "prompt_versions": {d.slug: d.prompt_version for d in domains}}
    return run


def switch_run(run: Run, *, actor: Actor) -> dict[str, int]:
    """Make ``run`` the one the fleet works on: drop the messages waiting for the previous run (its outcomes and
    workbooks stay; switching back queues what it still lacks), rebuild the counters from the new run's outcomes
    and queue its samples for the workers that are running. Returns how many were queued per worker."""
    previous = Run.objects.filter(is_current=True).first()
    with audited(Action.SWITCH_RUN, actor=actor, target=run.name,
                 parameters={"from": previous.name if previous else None}, atomic=False) as entry:
        if previous is not None and previous.pk == run.pk:
            raise RunRefused(f"run {run.name} is the current run already")
        keys = worker_keys()
        dropped = sum(purge_queue(key) for key in keys)
        with entry.commit(), transaction.atomic():
            Run.objects.filter(is_current=True).update(is_current=False)
            Run.objects.filter(pk=run.pk).update(is_current=True, started_at=run.started_at or timezone.now())
        forget_cached_runs()
        sync_keys(keys)
        running = [key_of(w) for w in Worker.objects.select_related("annotator", "domain")
                   .filter(desired_state=Worker.Desired.RUNNING)]
        queued = populate_keys(running) if running else {}
        entry.detail = {"dropped_messages": dropped, "queued": sum(queued.values())}
    run.refresh_from_db()
    return queued


def delete_run(run: Run, *, actor: Actor) -> int:
    """Delete a run that is not current: its outcomes, malformed attempts and its folder on this host. Returns how
    many outcomes went."""
    with audited(Action.DELETE_RUN, actor=actor, target=run.name) as entry:
        if run.is_current:
            raise RunRefused(f"run {run.name} is the current run: make another run current first")
        outcomes = run.outcomes.count()
        folder = run_dir(run)
        forget_gold(run)
        run.delete()
        entry.detail = {"outcomes": outcomes}
    shutil.rmtree(folder, ignore_errors=True)
    return outcomes
