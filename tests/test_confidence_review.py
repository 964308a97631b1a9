"""Routing to review by confidence and by agreement: a label whose probability is below its domain's threshold
(low_confidence) and a complete set of answers whose majority share is below the domain's threshold
(annotators_disagree); both off by default, both derived in the fast path as outcomes are stored and by the sync from
the store, which agree; their place in the risk order; and the review pages showing them."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Permission
from django.core.exceptions import ValidationError
from django.utils import timezone

from tests.helpers import make_samples
from workers_app.engine.catalogue_cache import forget_cached_rows
from workers_app.engine.keys import WorkerKey
from workers_app.engine.store import store_outcomes
from workers_app.models import Annotator, Domain, ReviewItem, Sample
from workers_app.review.flags import (
    ANNOTATORS_DISAGREE,
    LEVEL_4,
    LOW_CONFIDENCE,
    REFUSAL,
    URGENCY_SPREAD,
    describe,
    majority_share,
    risk_level,
    risk_of,
    sync_review_items,
)
from workers_app.runs.current import current_run

pytestmark = pytest.mark.django_db


def row(sample_id: int, annotator: int, domain: str, labels: list[str], *, confidence: float | None = None,
        malformed: bool = False) -> dict:
    return {"run": current_run(), "sample": Sample(pk=sample_id), "annotator": Annotator.objects.get(number=annotator),
            "domain": Domain.objects.get(slug=domain), "status": "malformed" if malformed else "ok",
            "labels": [] if malformed else labels, "reason": "no_marker" if malformed else "", "raw_answer": "",
            "prompt_version": 1, "started_at": timezone.now(), "confidence": confidence}


def store(fields: dict) -> int:
    return store_outcomes(WorkerKey(fields["annotator"].number, fields["domain"].slug), [fields])


def thresholds(slug: str, **values) -> None:
    Domain.objects.filter(slug=slug).update(**values)
    forget_cached_rows()


def items() -> dict[int, tuple[list[str], int, int]]:
    return {i.sample_id: (i.reasons, i.spread, i.risk) for i in ReviewItem.objects.all()}


def assert_the_sync_agrees() -> None:
    """What the fast path made is what the store calls for: delete every item, sync, and the same come back."""
    made = items()
    ReviewItem.objects.all().delete()
    sync_review_items()
    assert items() == made


@pytest.fixture
def samples(catalogue):
    return make_samples(4)


# -------------------------------------------------------------------------------------------- low confidence


def test_a_label_below_its_domains_confidence_threshold_is_routed_and_one_above_is_not(samples):
    thresholds("intensity", review_below_confidence=0.5)
    store(row(samples[0], 1, "intensity", ["INT-2"], confidence=0.31))
    store(row(samples[1], 1, "intensity", ["INT-2"], confidence=0.5))
    store(row(samples[2], 1, "intensity", ["INT-2"]))  # no confidence: nothing to judge
    assert items() == {samples[0]: ([LOW_CONFIDENCE], 0, 2)}
    assert_the_sync_agrees()


def test_without_a_threshold_a_low_confidence_routes_nothing_and_costs_no_query(samples,
                                                                                 django_assert_num_queries):
    unsure = row(samples[0], 1, "intensity", ["INT-2"], confidence=0.01)
    with django_assert_num_queries(1):  # the INSERT
        store(unsure)
    assert not ReviewItem.objects.exists()
    sync_review_items()
    assert not ReviewItem.objects.exists()


def test_the_sync_finds_a_low_confidence_label_whose_flag_was_lost(samples):
    thresholds("adjunct", review_below_confidence=0.9)
    store(row(samples[0], 2, "adjunct", ["ADJ-4"], confidence=0.6))
    ReviewItem.objects.all().delete()
    assert sync_review_items() == 1
    assert items() == {samples[0]: ([LOW_CONFIDENCE], 0, 2)}


def test_low_confidence_joins_a_level_4_item_below_it(samples):
    thresholds("urgency", review_below_confidence=0.8)
    store(row(samples[0], 1, "urgency", ["LEVEL_4"], confidence=0.4))
    reasons, _, risk = items()[samples[0]]
    assert reasons == [LEVEL_4, LOW_CONFIDENCE] and risk == 102 and risk_level(risk) == "high"
    assert_the_sync_agrees()


# ------------------------------------------------------------------------------------- annotators disagree


def answers(sample_id: int, domain: str, labels: list[list[str] | None]) -> None:
    """One answer per annotator 1..n (None: malformed)."""
    for number, given in enumerate(labels, start=1):
        store(row(sample_id, number, domain, given or [], malformed=given is None))


def test_majority_share_counts_a_set_of_codes_as_one_label():
    assert majority_share([("INT-1",), ("INT-1",), ("INT-2",)]) == pytest.approx(2 / 3)
    assert majority_share([("TA-1", "TA-5"), ("TA-1", "TA-5"), ("TA-1",), ("TA-5",)]) == 0.5
    assert majority_share([("INT-1",)]) is None and majority_share([]) is None


def test_a_complete_set_that_agrees_less_than_the_threshold_is_routed(samples):
    thresholds("intensity", review_below_agreement=0.6)
    answers(samples[0], "intensity", [["INT-1"], ["INT-1"], ["INT-2"], ["INT-2"], ["INT-3"]])  # 0.4
    answers(samples[1], "intensity", [["INT-1"], ["INT-1"], ["INT-1"], ["INT-2"], ["INT-3"]])  # 0.6: not below
    assert items() == {samples[0]: ([ANNOTATORS_DISAGREE], 0, 4)}
    assert_the_sync_agrees()


def test_disagreement_is_judged_only_once_every_annotator_has_answered(samples):
    """Two of five answers disagreeing say nothing yet: the three to come may agree, and a flag stays."""
    thresholds("intensity", review_below_agreement=0.6)
    answers(samples[0], "intensity", [["INT-1"], ["INT-2"], ["INT-1"], ["INT-1"]])
    assert not ReviewItem.objects.exists()
    sync_review_items()
    assert not ReviewItem.objects.exists()
    store(row(samples[0], 5, "intensity", ["INT-1"]))
    assert not ReviewItem.objects.exists()  # 4 of 5 agree


def test_malformed_answers_complete_the_set_but_give_no_vote(samples):
    thresholds("intensity", review_below_agreement=0.9)
    answers(samples[0], "intensity", [["INT-1"], ["INT-2"], None, None, None])  # 1 of 2 votes
    answers(samples[1], "intensity", [["INT-1"], None, None, None, None])  # one vote: no disagreement
    assert items() == {samples[0]: ([ANNOTATORS_DISAGREE], 0, 4)}
    assert_the_sync_agrees()


def test_a_disabled_annotator_is_not_waited_for(samples):
    Annotator.objects.filter(number=5).update(enabled=False)
    thresholds("modality", review_below_agreement=0.8)
    answers(samples[0], "modality", [["MOD-1"], ["MOD-1", "MOD-5"], ["MOD-1"], ["MOD-2"]])
    assert items() == {samples[0]: ([ANNOTATORS_DISAGREE], 0, 4)}
    assert_the_sync_agrees()


def test_without_an_agreement_threshold_disagreement_routes_nothing(samples):
    answers(samples[0], "intensity", [["INT-1"], ["INT-2"], ["INT-3"], ["INT-4"], ["INT-5"]])
    assert not ReviewItem.objects.exists()
    sync_review_items()
    assert not ReviewItem.objects.exists()


def test_every_reason_together_keeps_the_documented_order_and_risk(samples):
    thresholds("urgency", review_below_confidence=0.5, review_below_agreement=0.7)
    levels = [4, 1, 1, 2, 2]
    for number, level in enumerate(levels, start=1):
        store(row(samples[0], number, "urgency", [f"LEVEL_{level}"], confidence=0.2 if number == 2 else 0.9))
    store({**row(samples[0], 1, "adjunct", []), "status": "malformed", "reason": REFUSAL})
    reasons, spread, risk = items()[samples[0]]
    assert reasons == [LEVEL_4, URGENCY_SPREAD, ANNOTATORS_DISAGREE, LOW_CONFIDENCE, REFUSAL]
    assert (spread, risk) == (3, 100 + 30 + 4 + 2 + 1) == (3, risk_of(reasons, spread))
    assert describe(reasons, spread) == ("LEVEL_4 given; labels 3 levels apart; the annotators disagree; an "
                                         "annotator was unsure of its label; an answer reads as a refusal")
    assert_the_sync_agrees()


def test_the_new_reasons_alone_stay_below_the_smallest_spread():
    assert risk_of([ANNOTATORS_DISAGREE, LOW_CONFIDENCE, REFUSAL], 0) < risk_of([URGENCY_SPREAD], 2)
    assert risk_level(risk_of([ANNOTATORS_DISAGREE, LOW_CONFIDENCE, REFUSAL], 0)) == "low"


@pytest.mark.parametrize("value", [-0.1, 1.5, float("nan"), float("inf")])
@pytest.mark.parametrize("name", ["review_below_confidence", "review_below_agreement"])
def test_a_threshold_outside_zero_to_one_is_named_and_not_saved(catalogue, name, value):
    domain = Domain.objects.get(slug="urgency")
    setattr(domain, name, value)
    with pytest.raises(ValidationError) as refused:
        domain.full_clean()
    assert list(refused.value.message_dict) == [name]
    assert getattr(Domain.objects.get(slug="urgency"), name) is None


# ------------------------------------------------------------------------------------------------- pages


@pytest.fixture
def reviewer_client(client, django_user_model):
    user = django_user_model.objects.create_user("rita", password="pw", is_staff=True)
    user.user_permissions.add(Permission.objects.get(content_type__app_label="workers_app",
                                                     codename="review_sample"))
    client.force_login(user)
    return client


def test_the_queue_and_the_item_show_the_new_reasons_and_the_unsure_label(samples, reviewer_client):
    thresholds("intensity", review_below_confidence=0.5)
    store(row(samples[0], 1, "intensity", ["INT-3"], confidence=0.3125))
    store(row(samples[0], 2, "intensity", ["INT-3"], confidence=0.9))
    queue = reviewer_client.get("/review/?reason=low_confidence").content.decode()
    assert "an annotator was unsure of its label" in queue and '<option value="low_confidence" selected>' in queue
    assert '<option value="annotators_disagree">annotators disagree</option>' in queue
    page = reviewer_client.get(f"/review/{ReviewItem.objects.get().pk}/").content.decode()
    assert 'class="badge low-confidence"' in page and "p 0.31" in page and "p 0.90" in page
    assert page.count("low-confidence") == 1  # the confident label is shown plainly


def test_the_sample_page_shows_a_labels_confidence_where_it_has_one(samples, client):
    from tests.browser.conftest import make_staff

    client.force_login(make_staff("vic", "workers_app.view_sample"))
    store(row(samples[0], 1, "intensity", ["INT-3"], confidence=0.3125))
    store(row(samples[0], 2, "intensity", ["INT-3"]))
    page = client.get(f"/samples/{samples[0]}/").content.decode()
    assert page.count("<dt>Confidence</dt>") == 1 and "0.313" in page
