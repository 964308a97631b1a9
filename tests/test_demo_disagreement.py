"""The demo's five built-in annotators disagree the way real models do (synthetic profiles, engine/builtin.py):
on the demo corpus their urgency agreement is below 1, some labels differ, the review queue gets urgency-spread
items, and a changed prompt changes some answers in a run comparison. All of it deterministic."""

from __future__ import annotations

import pytest
from django.conf import settings
from django.core.management import call_command

from stats.agreement import krippendorff_alpha
from workers_app.engine.annotate import annotate_samples
from workers_app.engine.builtin import PROFILES, REFERENCE, builtin_answer
from workers_app.engine.keys import WorkerKey
from workers_app.models import Annotator, Domain, Outcome, ReviewItem, Run, Sample
from workers_app.review.flags import URGENCY_SPREAD
from workers_app.runs.compare import compare_runs
from workers_app.runs.services import RunPlan, create_run, switch_run

pytestmark = pytest.mark.django_db
NUMBERS = range(1, 6)


@pytest.fixture
def demo(catalogue):
    call_command("import_corpus", str(settings.DEMO_CORPUS), verbosity=0)
    return list(Sample.objects.order_by("external_id").values_list("pk", flat=True))


def annotate(sample_ids: list[int], domain: str = "urgency", run: Run | None = None) -> None:
    for number in NUMBERS:
        annotate_samples(sample_ids, WorkerKey(number, domain), worker=f"test-{number}",
                         run_id=run.pk if run else None)


def urgency_table(run: Run | None = None) -> dict[int, dict[str, str]]:
    """annotator number -> external id -> urgency label, of one run (the current one by default)."""
    outcomes = Outcome.objects.filter(domain__slug="urgency", status="ok")
    outcomes = outcomes.filter(run=run) if run else outcomes.filter(run__is_current=True)
    table: dict[int, dict[str, str]] = {number: {} for number in NUMBERS}
    for number, external_id, labels in outcomes.values_list("annotator__number", "sample__external_id", "labels"):
        table[number][external_id] = labels[0]
    return table


def test_the_seeded_annotators_have_five_different_profiles_and_the_model_offers_exactly_those(catalogue):
    profiles = list(Annotator.objects.order_by("number").values_list("builtin_profile", flat=True))
    assert profiles[0] == REFERENCE.name and len(set(profiles)) == 5
    assert set(PROFILES) == set(Annotator.BuiltinProfile.values)


def test_on_the_demo_posts_the_five_built_in_annotators_agree_less_than_perfectly(demo):
    annotate(demo)
    table = urgency_table()
    ids = sorted(table[1])
    assert len(ids) == 40 and all(len(table[number]) == 40 for number in NUMBERS)
    codes = Domain.objects.get(slug="urgency").code_list
    alpha = krippendorff_alpha([[table[number][i] for i in ids] for number in NUMBERS], level="ordinal",
                               categories=codes, bootstrap=0).alpha
    disagreeing = [i for i in ids if len({table[number][i] for number in NUMBERS}) > 1]
    # Real LLM annotators often agree around 0.6-0.8 on such scales: below 1, yet far from noise.
    assert 0.5 < alpha < 1
    assert 5 <= len(disagreeing) < 40
    # The flags follow from the stored labels: some posts' urgency labels lie two levels apart.
    assert ReviewItem.objects.filter(reasons__icontains=f'"{URGENCY_SPREAD}"').count() >= 1
    # The answers name the profile that gave them; the reference keeps the plain model name.
    models = dict(Outcome.objects.filter(domain__slug="urgency").values_list("annotator__number", "model").distinct())
    assert models[1] == "builtin-lexicon-v1" and models[2] == "builtin-lexicon-v1/cautious"


def test_the_same_corpus_gets_the_same_labels_in_every_run(demo):
    annotate(demo)
    first = Run.objects.get(is_current=True)
    again = create_run(RunPlan(name="again", annotators=list(NUMBERS), domains=["urgency"]), actor="test")
    switch_run(again, actor="test")
    annotate(demo, run=again)
    assert urgency_table(first) == urgency_table(again)
    comparison = compare_runs(first, again)
    assert comparison.pairs and all(pair.changed == 0 for pair in comparison.pairs)


def test_a_changed_prompt_changes_some_answers_of_the_sampled_profiles_but_none_of_the_reference(demo):
    annotate(demo)
    before = Run.objects.get(is_current=True)
    urgency = Domain.objects.get(slug="urgency")
    urgency.prompt_template = urgency.prompt_template.replace("Rate how urgently", "Judge how urgently")
    urgency.save()
    after = create_run(RunPlan(name="reworded", annotators=list(NUMBERS), domains=["urgency"]), actor="test")
    switch_run(after, actor="test")
    annotate(demo, run=after)
    changed = {pair.annotator: pair.changed for pair in compare_runs(before, after).pairs}
    assert changed[1] == 0  # the reference profile has no jitter: the lexicon alone decides
    assert sum(changed.values()) > 0


def test_a_profile_is_the_same_function_of_its_input_every_time():
    text = "I feel hopeless and I have been drinking every night since my breakup."
    for profile in PROFILES.values():
        answers = {builtin_answer(text, domain="urgency", codes=[f"LEVEL_{n}" for n in range(5)], profile=profile,
                                  prompt=f"Rate this: {text}") for _ in range(3)}
        assert len(answers) == 1
