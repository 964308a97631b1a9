"""Open alerts on the dashboard: grouped by kind (one line, a count and a link, whatever their number), and
acknowledged or snoozed by staff who may (workers_app.monitoring.acknowledge): audited, permission-checked, and
refusing hostile input without changing anything."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.auth.models import Permission
from django.utils import timezone

from audit.models import AuditLog
from tests.helpers import make_samples
from workers_app.fleet.rows import select_workers
from workers_app.models import Alert, ReviewItem
from workers_app.monitoring.acknowledge import AlertActionRefused, acknowledge_alerts, snooze_alerts
from workers_app.monitoring.review_alerts import alert_level_4_items
from workers_app.redis_client import get_redis
from workspace.dashboard.snapshot import SHARED_KEY

pytestmark = pytest.mark.django_db


@pytest.fixture
def watcher(django_user_model, catalogue):
    user = django_user_model.objects.create_user("wendy", password="pw", is_staff=True)
    user.user_permissions.add(*Permission.objects.filter(codename__in=["view_worker", "acknowledge_alert"]))
    return user


@pytest.fixture
def viewer(django_user_model, catalogue):
    user = django_user_model.objects.create_user("vera", password="pw", is_staff=True)
    user.user_permissions.add(Permission.objects.get(codename="view_worker"))
    return user


def level_4_alerts(count: int) -> list[int]:
    """``count`` new open LEVEL_4 review items, alerted by the sweep as in production; the new alerts' ids."""
    before = set(Alert.objects.values_list("id", flat=True))
    samples = make_samples(count, vary=True)
    ReviewItem.objects.bulk_create(ReviewItem(sample_id=pk, reasons=["level_4"], risk=100) for pk in samples)
    alert_level_4_items()
    return sorted(set(Alert.objects.filter(kind="review_level_4").values_list("id", flat=True)) - before)


def stalled(name: str = "annotator_1_urgency") -> Alert:
    number, domain = name.removeprefix("annotator_").split("_", 1)
    [worker] = select_workers(int(number), domain)
    return Alert.objects.create(key=f"stalled:{name}", kind="stalled", message=f"{name}: no heartbeat", worker=worker)


def live(client) -> dict:
    get_redis().delete(SHARED_KEY)
    return client.get("/dashboard/live").json()


def test_four_hundred_level_4_alerts_are_one_line_with_a_count_and_a_link(client, viewer,
                                                                          django_assert_max_num_queries):
    level_4_alerts(400)
    client.force_login(viewer)
    html = client.get("/dashboard/").content.decode()
    assert html.count('class="alert-group"') == 1
    assert '<a href="/review/?reason=level_4" data-field="headline">400 posts rated LEVEL_4 await review →</a>' in html
    get_redis().delete(SHARED_KEY)
    with django_assert_max_num_queries(8):  # as with no alert: one grouped query, whatever their number
        [group] = client.get("/dashboard/live").json()["alerts"]
    assert (group["new"], group["headline"]) == (400, "400 posts rated LEVEL_4 await review")


def test_acknowledging_a_kind_takes_what_the_page_showed_off_the_banner_and_is_audited(client, watcher):
    shown = level_4_alerts(3)
    other = stalled()
    newer = level_4_alerts(1)  # opened after the page was drawn: not acknowledged unseen
    client.force_login(watcher)
    answer = client.post("/dashboard/alerts", {"how": "acknowledge", "kind": "review_level_4",
                                               "up_to": str(shown[-1])}, HTTP_ACCEPT="application/json").json()
    assert answer == {"done": "acknowledged", "alerts": 3, "message": "acknowledged 3 alerts of kind review_level_4"}
    assert set(Alert.objects.filter(acknowledged_by="wendy").values_list("id", flat=True)) == set(shown)
    assert Alert.objects.get(pk=newer[0]).acknowledged_at is None and Alert.objects.get(pk=other.pk).acknowledged_at is None
    assert all(alert.resolved_at is None for alert in Alert.objects.all())  # seen, not solved
    row = AuditLog.objects.get(action="acknowledge_alerts")
    assert (row.actor, row.result, row.detail["alerts"], row.parameters["up_to"]) == ("wendy", "ok", 3, shown[-1])
    groups = {group["kind"]: group for group in live(client)["alerts"]}
    assert (groups["review_level_4"]["new"], groups["review_level_4"]["acknowledged"]) == (1, 3)
    assert groups["stalled"]["new"] == 1


def test_a_snoozed_kind_leaves_the_banner_until_its_time_and_then_comes_back(client, watcher):
    alert = stalled()
    client.force_login(watcher)
    response = client.post("/dashboard/alerts", {"how": "snooze", "kind": "stalled", "minutes": "60"})
    assert response.status_code == 302 and response["Location"] == "/dashboard/"
    alert.refresh_from_db()
    assert alert.snoozed_by == "wendy" and timedelta(minutes=59) < alert.snoozed_until - timezone.now() <= timedelta(
        minutes=60)
    [group] = live(client)["alerts"]
    assert (group["new"], group["snoozed"]) == (0, 1)
    assert live(client)["cells"]["annotator_1_urgency"]["alerts"] == 0
    html = client.get("/dashboard/").content.decode()
    assert 'class="alert-group"' not in html and "1 snoozed until" in html and "No new alerts." in html
    Alert.objects.filter(pk=alert.pk).update(snoozed_until=timezone.now() - timedelta(seconds=1))
    [group] = live(client)["alerts"]
    assert (group["new"], group["snoozed"]) == (1, 0)
    assert AuditLog.objects.get(action="snooze_alerts").parameters["minutes"] == 60


def test_without_the_permission_the_page_offers_no_buttons_and_the_request_is_refused_by_name(client, viewer):
    alert = stalled()
    client.force_login(viewer)
    assert 'name="how"' not in client.get("/dashboard/").content.decode()
    response = client.post("/dashboard/alerts", {"how": "acknowledge", "kind": "stalled"})
    assert response.status_code == 403 and b"workers_app.acknowledge_alert" in response.content
    alert.refresh_from_db()
    assert alert.acknowledged_at is None
    assert AuditLog.objects.filter(action="refused", target="/dashboard/alerts").exists()


def test_the_service_itself_refuses_a_user_without_the_permission_and_audits_it(viewer):
    stalled()
    with pytest.raises(AlertActionRefused, match="needs workers_app.acknowledge_alert"):
        acknowledge_alerts("stalled", actor_user=viewer)
    assert not Alert.objects.filter(acknowledged_at__isnull=False).exists()
    assert AuditLog.objects.get(action="acknowledge_alerts").result == "failed"


def test_anonymous_visitors_are_sent_to_log_in_and_get_requests_are_not_allowed(client, watcher):
    stalled()
    assert client.post("/dashboard/alerts", {"how": "acknowledge", "kind": "stalled"})["Location"].startswith(
        "/admin/login/")
    client.force_login(watcher)
    assert client.get("/dashboard/alerts").status_code == 405
    assert not Alert.objects.filter(acknowledged_at__isnull=False).exists()


@pytest.mark.parametrize("data, reason", [
    ({"how": "delete", "kind": "stalled"}, "unknown request 'delete'"),
    ({"how": "acknowledge", "kind": "../../etc/passwd"}, "is not a kind of alert"),
    ({"how": "acknowledge", "kind": "stalled' OR 1=1 --"}, "is not a kind of alert"),
    ({"how": "acknowledge", "kind": "x" * 10_000}, "is not a kind of alert"),
    ({"how": "acknowledge", "kind": ""}, "is not a kind of alert"),
    ({"how": "acknowledge", "kind": "disk"}, "no open alert of kind disk"),
    ({"how": "acknowledge", "kind": "stalled", "up_to": "-1"}, "up_to must be an alert id"),
    ({"how": "acknowledge", "kind": "stalled", "up_to": "1e9"}, "up_to must be an alert id"),
    ({"how": "acknowledge", "kind": "stalled", "up_to": "0"}, "up_to must be an alert id"),
    ({"how": "snooze", "kind": "stalled", "minutes": "7"}, "snooze for one of 15, 60, 240, 1440 minutes"),
    ({"how": "snooze", "kind": "stalled", "minutes": "60; DROP TABLE"}, "snooze for one of"),
    ({"how": "snooze", "kind": "stalled", "minutes": "99999999999999999999"}, "snooze for one of"),
    ({"how": "snooze", "kind": "stalled"}, "snooze for one of"),
])
def test_a_hostile_request_is_refused_by_name_and_changes_nothing(client, watcher, data, reason):
    stalled()
    client.force_login(watcher)
    response = client.post("/dashboard/alerts", data, HTTP_ACCEPT="application/json")
    assert response.status_code == 400 and reason in response.json()["detail"]
    assert not Alert.objects.filter(acknowledged_at__isnull=False).exists()
    assert not Alert.objects.filter(snoozed_until__isnull=False).exists()
    assert not AuditLog.objects.filter(action__in=["acknowledge_alerts", "snooze_alerts"], result="ok").exists()


@pytest.mark.parametrize("minutes", [True, 60.0, "60", None, -15])
def test_the_snooze_service_takes_only_the_listed_whole_minutes(watcher, minutes):
    stalled()
    with pytest.raises(AlertActionRefused, match="snooze for one of"):
        snooze_alerts("stalled", minutes=minutes, actor_user=watcher)
    assert AuditLog.objects.get(action="snooze_alerts").result == "failed"


def test_an_acknowledged_alert_that_clears_is_resolved_as_before(watcher):
    [alert_id] = level_4_alerts(1)
    acknowledge_alerts("review_level_4", actor_user=watcher)
    ReviewItem.objects.update(status=ReviewItem.Status.REVIEWED)
    alert_level_4_items()
    assert Alert.objects.get(pk=alert_id).resolved_at is not None
