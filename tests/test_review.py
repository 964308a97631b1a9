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
from tests.helpers import make_samples, wait_until
from tests.worker_processes import assert_all_ok
from workers_app.engine.annotate import annotate_samples
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
from workers_app.runs.current import current_run

pytestmark = pytest.mark.django_db


def row(sample_id: int, annotator: int, domain: str, labels: list[str] | None = None, *,
        reason: str = "") -> dict:
    """The fields of one outcome, as the engine hands them to store_outcomes."""
    return {"run": current_run(), "sample": Sample(pk=sample_id), "annotator": Annotator.objects.get(number=annotator),
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


@pytest.mark.django_db(transaction=True)
def test_a_worker_killed_between_its_insert_and_its_flag_is_flagged_by_the_redelivered_message(samples):
    Outcome.objects.create(**row(samples[0], 1, "urgency", ["LEVEL_4"]))  # stored; the flag died with the process
    later, _ = annotate_samples([samples[0], samples[1]], WorkerKey(1, "urgency"), worker="redelivered")
    assert later == [] and item_of(samples[0]).reasons == [LEVEL_4]
    assert Outcome.objects.filter(sample_id=samples[0]).count() == 1  # not asked again


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

        def flag(fields, gate=gate):
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


# ---------------------------------------------------------------------------------------------- the LEVEL_4 alert


@pytest.fixture
def mailed(settings):
    from django.core import mail

    settings.ALERT_EMAILS = ["clinic@example.org"]
    return mail.outbox


def review_mails(outbox) -> list[str]:
    return [message.subject for message in outbox if KIND in message.subject]


def test_the_sweep_alerts_once_for_each_new_level_4_item_and_resolves_it_when_reviewed(samples, mailed,
                                                                                      django_user_model):
    urgency(samples[0], 1, 4)
    store(1, "modality", [row(samples[1], 1, "modality", reason=REFUSAL)])
    alert_level_4_items()
    alert_level_4_items()
    assert review_mails(mailed) == [f"[annotation fleet] {KIND}"]
    [alert] = Alert.objects.filter(kind=KIND)
    item = item_of(samples[0])
    assert alert.resolved_at is None and item.alerted_at is not None
    assert Sample.objects.get(pk=samples[0]).external_id in alert.message and f"/review/{item.pk}/" in alert.message
    user = reviewer(django_user_model, "rita")
    claim_review(item, actor_user=user)
    alert_level_4_items()
    assert Alert.objects.get(pk=alert.pk).resolved_at is None
    adjudicate_review(item, labels={"urgency": ["LEVEL_4"]}, note="called the service", actor_user=user)
    alert_level_4_items()
    alert_level_4_items()
    assert Alert.objects.get(pk=alert.pk).resolved_at is not None
    assert review_mails(mailed) == [f"[annotation fleet] {KIND}", f"[annotation fleet] resolved: {KIND}"]


def test_an_item_that_gains_level_4_later_is_alerted_then(samples, mailed):
    urgency(samples[0], 1, 0)
    urgency(samples[0], 2, 2)
    alert_level_4_items()
    assert review_mails(mailed) == []
    urgency(samples[0], 3, 4)
    alert_level_4_items()
    assert len(review_mails(mailed)) == 1


def test_the_review_sweep_syncs_a_lost_flag_once_a_minute_or_at_once_after_a_failed_flag(samples, mailed):
    from workers_app.redis_client import get_redis
    from workers_app.review.flags import SYNC_THROTTLE_KEY, request_sync

    urgency(samples[0], 1, 4)
    ReviewItem.objects.all().delete()  # as if the worker died between its INSERT and its flag
    review_sweep()
    assert item_of(samples[0]).reasons == [LEVEL_4] and len(review_mails(mailed)) == 1
    ReviewItem.objects.all().delete()
    review_sweep()
    assert item_of(samples[0]) is None and get_redis().ttl(SYNC_THROTTLE_KEY) > 0
    request_sync()
    review_sweep()
    assert item_of(samples[0]) is not None


# ---------------------------------------------------------------------------------------------- the reviewer's steps


@pytest.fixture
def level_4_item(samples):
    for annotator, level in ((1, 4), (2, 3), (3, 3), (4, 2), (5, 3)):
        urgency(samples[0], annotator, level)
    return item_of(samples[0])


def audit_rows(action: str) -> list[tuple[str, str]]:
    return list(AuditLog.objects.filter(action=action).order_by("id").values_list("actor", "result"))


def test_a_reviewer_claims_adjudicates_and_every_step_is_audited(level_4_item, django_user_model):
    user = reviewer(django_user_model, "rita")
    claimed = claim_review(level_4_item, actor_user=user)
    assert claimed.status == ReviewItem.Status.CLAIMED and claimed.claimed_by == user
    done = adjudicate_review(level_4_item, labels={"urgency": ["LEVEL_3"], "modality": ["MOD-2", "MOD-1"]},
                             note="  spoke to the team  ", actor_user=user)
    assert done.status == ReviewItem.Status.REVIEWED and done.reviewed_by == user and done.reviewed_at
    assert done.adjudicated == {"urgency": ["LEVEL_3"], "modality": ["MOD-1", "MOD-2"]}
    assert done.note == "spoke to the team"
    assert audit_rows("claim_review") == [("rita", "ok")]
    assert audit_rows("adjudicate_review") == [("rita", "ok")]


def test_it_refuses_a_second_claim_of_one_item(level_4_item, django_user_model):
    rita, sam = reviewer(django_user_model, "rita"), reviewer(django_user_model, "sam")
    claim_review(level_4_item, actor_user=rita)
    with pytest.raises(ReviewRefused, match="already claimed by rita"):
        claim_review(level_4_item, actor_user=sam)
    assert item_of(level_4_item.sample_id).claimed_by == rita
    assert claim_review(level_4_item, actor_user=rita).claimed_by == rita  # her own claim again: nothing changes
    assert audit_rows("claim_review") == [("rita", "ok"), ("sam", "failed"), ("rita", "ok")]


@pytest.mark.django_db(transaction=True)
def test_two_reviewers_claiming_at_the_same_moment_one_wins(level_4_item, django_user_model):
    users = [reviewer(django_user_model, name) for name in ("rita", "sam")]
    gate = threading.Barrier(2)
    outcomes: dict[str, str] = {}

    def claim(user):
        try:
            gate.wait()
            claim_review(level_4_item, actor_user=user)
            outcomes[user.username] = "won"
        except ReviewRefused as exc:
            outcomes[user.username] = str(exc)
        finally:
            close_old_connections()

    threads = [threading.Thread(target=claim, args=(user,)) for user in users]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    winner = item_of(level_4_item.sample_id).claimed_by.username
    loser = next(name for name in outcomes if name != winner)
    assert outcomes[winner] == "won" and outcomes[loser] == f"this item is already claimed by {winner}"


def test_only_the_claimer_or_a_superuser_releases(level_4_item, django_user_model):
    rita, sam = reviewer(django_user_model, "rita"), reviewer(django_user_model, "sam")
    with pytest.raises(ReviewRefused, match="not claimed"):
        release_review(level_4_item, actor_user=rita)
    claim_review(level_4_item, actor_user=rita)
    with pytest.raises(ReviewRefused, match=r"only its claimer \(rita\)"):
        release_review(level_4_item, actor_user=sam)
    assert release_review(level_4_item, actor_user=rita).status == ReviewItem.Status.OPEN
    claim_review(level_4_item, actor_user=sam)
    boss = django_user_model.objects.create_superuser("boss", password="pw")
    released = release_review(level_4_item, actor_user=boss)
    assert released.status == ReviewItem.Status.OPEN and released.claimed_by is None
    assert audit_rows("release_review") == [("rita", "failed"), ("sam", "failed"), ("rita", "ok"), ("boss", "ok")]


@pytest.mark.parametrize(("labels", "where", "why"), [
    ({"nosuch": ["LEVEL_1"]}, "nosuch", "not a domain that can be adjudicated"),
    ({"urgency": ["LEVEL_9"]}, "urgency", "'LEVEL_9' is not one of its codes"),
    ({"urgency": ["LEVEL_1", "LEVEL_2"]}, "urgency", "choose exactly one code (got 2)"),
    ({"urgency": []}, "urgency", "choose exactly one code (got 0)"),
    ({"urgency": "LEVEL_1"}, "urgency", "give a list of codes"),
    ({"modality": ["MOD-1", "MOD-1"]}, "modality", "a code is given twice"),
    # Redressal is adjudicable (issue 26): as a list of 1 to 10 distinct short issues.
    ({"redressal": [f"issue {n}" for n in range(11)]}, "redressal", "give 1 to 10 issues (got 11)"),
    (["urgency"], "labels", "give a mapping of domain to codes"),
])
def test_a_bad_adjudication_names_the_domain_and_why_and_changes_nothing(level_4_item, django_user_model, labels,
                                                                         where, why):
    user = reviewer(django_user_model, "rita")
    claim_review(level_4_item, actor_user=user)
    with pytest.raises(InvalidAdjudication) as refused:
        adjudicate_review(level_4_item, labels=labels, note="n", actor_user=user)
    assert refused.value.problems[where].startswith(why)
    item = item_of(level_4_item.sample_id)
    assert item.status == ReviewItem.Status.CLAIMED and item.adjudicated == {} and item.note == ""
    assert audit_rows("adjudicate_review") == [("rita", "failed")]


def test_only_the_claimer_adjudicates(level_4_item, django_user_model):
    rita, sam = reviewer(django_user_model, "rita"), reviewer(django_user_model, "sam")
    with pytest.raises(ReviewRefused, match="claim this item before"):
        adjudicate_review(level_4_item, labels={"urgency": ["LEVEL_1"]}, note="", actor_user=rita)
    claim_review(level_4_item, actor_user=rita)
    with pytest.raises(ReviewRefused, match="already claimed by rita"):
        adjudicate_review(level_4_item, labels={"urgency": ["LEVEL_1"]}, note="", actor_user=sam)
    adjudicate_review(level_4_item, labels={"urgency": ["LEVEL_2"]}, note="", actor_user=rita)
    with pytest.raises(ReviewRefused, match="already reviewed by rita"):
        adjudicate_review(level_4_item, labels={"urgency": ["LEVEL_1"]}, note="", actor_user=rita)
    with pytest.raises(ReviewRefused, match="already reviewed by rita"):
        claim_review(level_4_item, actor_user=sam)
    assert item_of(level_4_item.sample_id).adjudicated == {"urgency": ["LEVEL_2"]}


def test_staff_without_review_sample_are_refused_by_the_service(level_4_item, django_user_model):
    viewer = django_user_model.objects.create_user("vic", password="pw", is_staff=True)
    with pytest.raises(ReviewRefused, match="needs workers_app.review_sample"):
        claim_review(level_4_item, actor_user=viewer)
    assert item_of(level_4_item.sample_id).status == ReviewItem.Status.OPEN


# ---------------------------------------------------------------------------------------------- the consolidated workbook


@pytest.fixture
def adjudicated_run(catalogue, django_user_model, tmp_path):
    """Three posts every annotator rated; a reviewer adjudicated each (LEVEL_4, LEVEL_2, LEVEL_1)."""
    from admin_ops.services.consolidate import consolidate

    ids = make_samples(3, vary=True)
    Sample.objects.filter(pk=ids[0]).update(text='=HYPERLINK("http://evil.example","click")')
    given = {ids[0]: [4, 4, 3, 3, 4], ids[1]: [4, 2, 2, 2, 2], ids[2]: [0, 4, 1, 1, 1]}
    for sample_id, levels in given.items():
        for annotator, level in enumerate(levels, start=1):
            urgency(sample_id, annotator, level)
    rita = reviewer(django_user_model, "rita")
    for sample_id, level in zip(ids, (4, 2, 1), strict=True):
        claim_review(item_of(sample_id), actor_user=rita)
        adjudicate_review(item_of(sample_id), labels={"urgency": [f"LEVEL_{level}"]}, note=f"n{level}",
                          actor_user=rita)
    store(1, "modality", [row(ids[1], 1, "modality", reason=REFUSAL)])
    report = consolidate(tmp_path / "c.xlsx", actor="test")
    return ids, report, openpyxl.load_workbook(report.path)


def test_each_domain_sheet_has_the_adjudicated_label_and_the_post_text_as_text(adjudicated_run):
    ids, _, book = adjudicated_run
    sheet = book["urgency"]
    rows = list(sheet.iter_rows(values_only=True))
    assert rows[0][-4:] == ("majority label", "all agree", "adjudicated label", "post text")
    external = dict(Sample.objects.values_list("pk", "external_id"))
    by_id = {r[0]: r for r in rows[1:]}
    assert [by_id[external[pk]][-2] for pk in ids] == ["LEVEL_4", "LEVEL_2", "LEVEL_1"]
    first = next(index for index, r in enumerate(rows) if r[0] == external[ids[0]]) + 1
    cell = sheet.cell(row=first, column=len(rows[0]))
    assert cell.value == '=HYPERLINK("http://evil.example","click")' and cell.data_type == "s"
    assert by_id[external[ids[1]]][-1] == Sample.objects.get(pk=ids[1]).text
    assert {r[-2] for r in book["modality"].iter_rows(min_row=2, values_only=True)} == {None}


def test_the_review_sheet_lists_the_queue_with_its_state_and_the_post(adjudicated_run):
    ids, report, book = adjudicated_run
    rows = list(book["Review"].iter_rows(values_only=True))
    assert rows[0][:7] == ("sample id", "why a human must read it first", "risk", "status", "reviewed by",
                           "adjudicated urgency", "note") and rows[0][-1] == "post text"
    external = dict(Sample.objects.values_list("pk", "external_id"))
    by_id = {r[0]: r for r in rows[1:]}
    assert len(rows) - 1 == report.review == ReviewItem.objects.count() == 3
    assert by_id[external[ids[1]]][1:7] == ("LEVEL_4 given; labels 2 levels apart; an answer reads as a refusal",
                                            item_of(ids[1]).risk, "reviewed", "rita", "LEVEL_2", "n2")
    assert by_id[external[ids[2]]][7:12] == ("LEVEL_0", "LEVEL_4", "LEVEL_1", "LEVEL_1", "LEVEL_1")
    assert [r[2] for r in rows[1:]] == sorted((r[2] for r in rows[1:]), reverse=True)


def test_the_agreement_sheet_scores_each_annotator_against_the_adjudicated_labels(adjudicated_run):
    _, _, book = adjudicated_run
    rows = list(book["Agreement"].iter_rows(values_only=True))
    scored = {r[1]: r for r in rows if r[0] == "urgency" and str(r[1]).startswith("annotator ")}
    # annotator 1: (4,4) (4,2) (0,1): 1 of 3 exact; quadratic kappa 1 - (5/3) / (47/9) = 32/47
    assert scored["annotator 1"][2:4] == (3, pytest.approx(1 / 3))
    assert scored["annotator 1"][4] == pytest.approx(32 / 47) and scored["annotator 1"][5] == "quadratic"
    # annotator 4: (3,4) (2,2) (1,1): 2 of 3
    assert scored["annotator 4"][2:4] == (3, pytest.approx(2 / 3))
    assert not any(r[0] == "modality" and str(r[1]).startswith("annotator ") for r in rows)


def test_consolidation_first_derives_the_items_the_store_calls_for(samples, tmp_path):
    from admin_ops.services.consolidate import consolidate

    urgency(samples[0], 1, 4)
    ReviewItem.objects.all().delete()
    assert consolidate(tmp_path / "c.xlsx", actor="test").review == 1
    assert item_of(samples[0]).reasons == [LEVEL_4]


# ---------------------------------------------------------------------------------------------- a real worker


@pytest.mark.django_db(transaction=True)
def test_a_real_worker_storing_level_4_makes_an_item_and_the_sweep_alerts_once(agent, mailed):
    from workers_app.engine.queues import populate_queues
    from workers_app.fleet.rows import select_workers
    from workers_app.fleet.services import launch_worker
    from workers_app.monitoring.sweep import health_sweep

    calm = make_samples(3, "Exams are stressing me out a little.", vary=True)
    [urgent] = make_samples(1, "I am suicidal and want to kill myself tonight.")
    [row_] = select_workers(1, "urgency")
    assert_all_ok([launch_worker(row_, actor="test")], agent)
    populate_queues(1, "urgency")
    wait_until(lambda: Outcome.objects.filter(domain__slug="urgency").count() == 4, timeout=60, what="the worker's outcomes")
    assert Outcome.objects.get(sample_id=urgent).labels == ["LEVEL_4"]
    # the worker flags right after its INSERT commits: on a loaded machine the outcome shows a moment before the item
    wait_until(lambda: item_of(urgent) is not None, timeout=60, what="the review item flagged after the store")
    item = item_of(urgent)
    assert item.reasons == [LEVEL_4]
    assert not ReviewItem.objects.filter(sample_id__in=calm).exists()
    health_sweep()
    health_sweep()
    assert review_mails(mailed) == [f"[annotation fleet] {KIND}"]
    assert Alert.objects.filter(kind=KIND, key=f"{KIND}:{item.pk}").count() == 1
