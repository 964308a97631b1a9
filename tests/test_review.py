"""The clinical review queue: flags made as outcomes are stored, the sync from the store, the LEVEL_4 alert, the
reviewer's services and the consolidated workbook's review columns."""

from __future__ import annotations

import threading

import openpyxl
import pytest
from django.contrib.auth.models import Permission
from django.db import close_old_connections
from django.utils import timezone

from audit.models import AuditLog
from tests.conftest import make_samples
from workers_app.engine.keys import WorkerKey
from workers_app.engine.store import store_outcomes
from workers_app.models import Alert, Annotator, Domain, Outcome, ReviewItem, Sample
from workers_app.monitoring.review_alerts import KIND, alert_level_4_items, review_sweep
from workers_app.review.flags import (
    CRITICAL_RISK,
    LEVEL_4,
    REFUSAL,
    URGENCY_SPREAD,
    flag_stored,
    risk_level,
    sync_review_items,
)
from workers_app.review.services import (
    InvalidAdjudication,
    ReviewRefused,
    adjudicate_review,
    claim_review,
    release_review,
)

pytestmark = pytest.mark.django_db


def row(sample_id: int, annotator: int, domain: str, labels: list[str] | None = None, *,
        reason: str = "") -> dict:
    """The fields of one outcome, as the engine hands them to store_outcomes."""
    return {"sample": Sample(pk=sample_id), "annotator": Annotator.objects.get(number=annotator),
            "domain": Domain.objects.get(slug=domain), "status": "malformed" if reason else "ok",
            "labels": labels or [], "reason": reason, "raw_answer": "I'm sorry, I can't help" if reason else "",
            "prompt_version": 1, "started_at": timezone.now()}


def store(annotator: int, domain: str, rows: list[dict]) -> int:
    return store_outcomes(WorkerKey(annotator, domain), rows)


def urgency(sample_id: int, annotator: int, level: int) -> int:
    return store(annotator, "urgency", [row(sample_id, annotator, "urgency", [f"LEVEL_{level}"])])


def item_of(sample_id: int) -> ReviewItem | None:
    return ReviewItem.objects.filter(sample_id=sample_id).first()


@pytest.fixture
def samples(catalogue):
    return make_samples(4)


def reviewer(django_user_model, name: str, *extra: str):
    user = django_user_model.objects.create_user(name, password="pw", is_staff=True)
    for dotted in ("workers_app.review_sample", *extra):
        app_label, codename = dotted.split(".")
        user.user_permissions.add(Permission.objects.get(content_type__app_label=app_label, codename=codename))
    return django_user_model.objects.get(pk=user.pk)  # a fresh object: no stale permission cache


# ---------------------------------------------------------------------------------------------- flagging


def test_a_level_4_urgency_label_makes_a_high_risk_item_as_it_is_stored(samples):
    urgency(samples[0], 1, 4)
    item = item_of(samples[0])
    assert item.reasons == [LEVEL_4] and item.risk >= CRITICAL_RISK and risk_level(item.risk) == "high"
    assert item.status == ReviewItem.Status.OPEN


def test_a_refusal_in_any_domain_makes_an_item(samples):
    store(1, "modality", [row(samples[0], 1, "modality", reason=REFUSAL)])
    assert item_of(samples[0]).reasons == [REFUSAL]
    assert risk_level(item_of(samples[0]).risk) == "low"


def test_urgency_labels_two_levels_apart_make_an_item_and_one_level_apart_do_not(samples):
    urgency(samples[0], 1, 1)
    urgency(samples[0], 2, 2)
    urgency(samples[1], 1, 0)
    assert item_of(samples[0]) is None
    urgency(samples[1], 2, 2)
    item = item_of(samples[1])
    assert item.reasons == [URGENCY_SPREAD] and risk_level(item.risk) == "medium"


def test_other_malformed_answers_and_calm_labels_make_no_item(samples):
    store(1, "modality", [row(samples[0], 1, "modality", reason="no_marker")])
    urgency(samples[1], 1, 2)
    store(1, "intensity", [row(samples[2], 1, "intensity", ["INT-1"])])
    assert not ReviewItem.objects.exists()


def test_later_reasons_extend_the_one_item_and_raise_its_risk(samples):
    urgency(samples[0], 1, 0)
    urgency(samples[0], 2, 2)
    spread_risk = item_of(samples[0]).risk
    store(3, "modality", [row(samples[0], 3, "modality", reason=REFUSAL)])
    urgency(samples[0], 4, 4)
    item = item_of(samples[0])
    assert item.reasons == [LEVEL_4, URGENCY_SPREAD, REFUSAL] and item.risk > spread_risk >= 20
    assert ReviewItem.objects.count() == 1


def test_a_message_of_many_samples_flags_each_with_a_few_queries(samples, django_assert_max_num_queries):
    for annotator in (2, 3):
        urgency(samples[0], annotator, 0)
    rows = [row(samples[0], 1, "urgency", ["LEVEL_3"]), row(samples[1], 1, "urgency", ["LEVEL_4"]),
            row(samples[2], 1, "urgency", ["LEVEL_1"]), row(samples[3], 1, "urgency", ["LEVEL_0"])]
    # the INSERT, the urgency labels, the items, the new items' INSERT and their re-read
    with django_assert_max_num_queries(5):
        store(1, "urgency", rows)
    assert {i.sample_id: i.reasons for i in ReviewItem.objects.all()} == {samples[0]: [URGENCY_SPREAD],
                                                                          samples[1]: [LEVEL_4]}


def test_a_message_without_urgency_rows_or_refusals_costs_no_flagging_query(samples, django_assert_num_queries):
    rows = [row(sample, 1, "modality", ["MOD-1"]) for sample in samples]
    with django_assert_num_queries(1):  # the INSERT alone
        store(1, "modality", rows)


@pytest.mark.django_db(transaction=True)  # the store works in autocommit, as in a worker
def test_a_redelivered_message_whose_outcomes_are_stored_still_flags(samples):
    rows = [row(samples[0], 1, "urgency", ["LEVEL_4"])]
    Outcome.objects.create(**rows[0])  # the first copy stored it and was killed before its flag
    assert store(1, "urgency", rows) == 0
    assert item_of(samples[0]).reasons == [LEVEL_4]


def test_flagging_twice_changes_nothing(samples):
    rows = [row(samples[0], 1, "urgency", ["LEVEL_4"])]
    store(1, "urgency", rows)
    before = item_of(samples[0])
    assert flag_stored(rows) == 0
    after = item_of(samples[0])
    assert (after.pk, after.reasons, after.risk) == (before.pk, before.reasons, before.risk)


def test_the_sync_recovers_an_item_deleted_behind_its_back_and_a_lost_reason(samples):
    urgency(samples[0], 1, 4)
    urgency(samples[1], 1, 0)
    urgency(samples[1], 2, 3)
    store(1, "modality", [row(samples[1], 1, "modality", reason=REFUSAL)])
    expected = {i.sample_id: (i.reasons, i.risk) for i in ReviewItem.objects.all()}
    ReviewItem.objects.filter(sample_id=samples[0]).delete()
    ReviewItem.objects.filter(sample_id=samples[1]).update(reasons=[URGENCY_SPREAD], risk=30)
    assert sync_review_items() == 2
    assert {i.sample_id: (i.reasons, i.risk) for i in ReviewItem.objects.all()} == expected
    assert sync_review_items() == 0


def test_the_sync_keeps_a_reviewed_item_as_it_is(samples, django_user_model):
    urgency(samples[0], 1, 4)
    user = reviewer(django_user_model, "rita")
    claim_review(item_of(samples[0]), actor_user=user)
    adjudicate_review(item_of(samples[0]), labels={"urgency": ["LEVEL_3"]}, note="", actor_user=user)
    sync_review_items()
    assert item_of(samples[0]).status == ReviewItem.Status.REVIEWED


@pytest.mark.django_db(transaction=True)
def test_two_threads_flagging_one_sample_at_once_keep_both_reasons(catalogue):
    """Two flaggers of one new sample, released together, many rounds: one item holding both reasons."""
    rounds = 15
    sample_ids = make_samples(rounds)
    for sample_id in sample_ids:
        urgency(sample_id, 3, 0)
    for sample_id in sample_ids:
        gate = threading.Barrier(2)
        jobs = [[row(sample_id, 1, "urgency", ["LEVEL_2"])], [row(sample_id, 2, "modality", reason=REFUSAL)]]
        for fields in jobs:
            Outcome.objects.create(**fields[0])

        def flag(fields):
            try:
                gate.wait()
                flag_stored(fields)
            finally:
                close_old_connections()

        threads = [threading.Thread(target=flag, args=(fields,)) for fields in jobs]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert item_of(sample_id).reasons == [URGENCY_SPREAD, REFUSAL]
    assert ReviewItem.objects.count() == rounds
