"""The fleet dashboard's pages through Django's test client: permissions, hostile requests, what the grid shows."""

from __future__ import annotations

import json
import re

import pytest
from django.contrib.auth.models import Permission

from audit.models import AuditLog
from tests.helpers import make_samples
from workers_app.engine.keys import WorkerKey
from workers_app.engine.store import store_outcomes
from workers_app.fleet.rows import select_workers
from workers_app.models import Alert, Annotator, Domain, Sample, Worker, WorkerEvent, WorkerMetric
from workers_app.redis_client import get_redis
from workers_app.runs.current import current_run
from workspace.dashboard.snapshot import SHARED_KEY

pytestmark = pytest.mark.django_db


@pytest.fixture
def viewer(django_user_model, catalogue):
    user = django_user_model.objects.create_user("viewer", password="pw", is_staff=True)
    user.user_permissions.add(Permission.objects.get(codename="view_worker"))
    return user


def grant(user, *codenames: str) -> None:
    user.user_permissions.add(*Permission.objects.filter(codename__in=codenames))


def store_some(annotator: int, domain: str, count: int, status: str = "ok", skip: int = 0) -> None:
    from django.utils import timezone

    a, d = Annotator.objects.get(number=annotator), Domain.objects.get(slug=domain)
    samples = Sample.objects.order_by("id")[skip:skip + count]
    store_outcomes(WorkerKey(annotator, domain), [
        {"run": current_run(), "sample": s, "annotator": a, "domain": d, "status": status, "labels": [d.code_list[0]] if status == "ok"
         else [], "reason": "", "prompt_version": 1, "started_at": timezone.now()} for s in samples])


def test_it_sends_anonymous_visitors_to_the_login_page(client, catalogue):
    for path in ("/dashboard/", "/dashboard/workers/annotator_1_urgency/"):
        response = client.get(path)
        assert response.status_code == 302 and response["Location"].startswith("/admin/login/"), path


def test_what_the_page_polls_answers_anonymous_requests_401_without_a_csrf_cookie(client, catalogue):
    for path in ("/dashboard/live", "/dashboard/charts"):
        response = client.get(path)
        assert response.status_code == 401 and response.json() == {"error": "not logged in"}, path
        assert "csrftoken" not in response.cookies


def test_it_refuses_staff_without_view_worker_and_audits_the_refusal(client, django_user_model, catalogue):
    client.force_login(django_user_model.objects.create_user("nobody", password="pw", is_staff=True))
    assert client.get("/dashboard/").status_code == 403
    assert client.get("/dashboard/live").status_code == 403
    assert client.post("/dashboard/act", {"op": "pause", "workers": ["annotator_1_urgency"]}).status_code == 403
    assert AuditLog.objects.filter(action="refused", target="/dashboard/").exists()


def test_the_grid_has_one_cell_per_worker_with_its_name_and_state(client, viewer):
    client.force_login(viewer)
    html = client.get("/dashboard/").content.decode()
    cells = re.findall(r'data-worker="(annotator_\d_[a-z_]+)" data-state="([a-z]+)"', html)
    assert len(cells) == 30 and {state for _, state in cells} == {"stopped"}
    assert "actions need the permissions of an operator" in html and 'name="op"' not in html


def test_live_reports_progress_rate_malformed_share_and_alerts(client, viewer):
    make_samples(10)
    store_some(1, "urgency", 8)
    store_some(1, "urgency", 2, status="malformed", skip=8)
    [worker] = select_workers(1, "urgency")
    Alert.objects.create(key="stalled:annotator_1_urgency", kind="stalled", message="no heartbeat", worker=worker)
    client.force_login(viewer)
    data = client.get("/dashboard/live").json()
    cell = data["cells"]["annotator_1_urgency"]
    assert (cell["done"], cell["malformed"], cell["total"]) == (10, 2, 10)
    assert cell["display"]["malformed"] == "20.0 %" and cell["alerts"] == 1
    assert cell["per_minute"] >= 10  # 10 stored within the last minute's window
    [group] = data["alerts"]
    assert (group["kind"], group["new"], group["workers"]) == ("stalled", 1, ["annotator_1_urgency"])
    assert group["headline"] == "1 worker stalled" and group["link"] == "/dashboard/workers/annotator_1_urgency/"
    assert data["totals"]["done"] == 10 and data["totals"]["workers"] == 30


def test_live_costs_a_fixed_number_of_queries_whatever_the_fleet(client, viewer, django_assert_max_num_queries):
    client.force_login(viewer)
    client.get("/dashboard/live")  # the first look creates the worker rows
    get_redis().delete(SHARED_KEY)
    # session, user, the user's and the groups' permissions, then workers, samples, open alerts and batches
    with django_assert_max_num_queries(8):
        assert client.get("/dashboard/live").status_code == 200


def test_viewers_polling_within_half_a_second_share_one_snapshot(client, viewer, django_assert_max_num_queries):
    client.force_login(viewer)
    first = client.get("/dashboard/live").content
    with django_assert_max_num_queries(4):  # only the session and the permission checks
        assert client.get("/dashboard/live").content == first
    get_redis().delete(SHARED_KEY)  # as when the half second is over
    make_samples(1)
    assert client.get("/dashboard/live").json()["cells"]["annotator_1_urgency"]["total"] == 1


@pytest.mark.parametrize("data, reason", [
    ({"op": "explode", "workers": ["annotator_1_urgency"]}, "unknown action"),
    ({"op": "pause"}, "select at least one worker"),
    ({"op": "pause", "workers": ["../../etc/passwd"]}, "not a worker name"),
    ({"op": "pause", "workers": ["annotator_9_urgency"]}, "no such worker"),
    ({"op": "pause", "workers": ["annotator_1_nonsense"]}, "no such worker"),
])
def test_a_bad_action_request_is_refused_by_name_and_changes_nothing(client, viewer, data, reason):
    grant(viewer, "pause_worker")
    client.force_login(viewer)
    response = client.post("/dashboard/act", data, HTTP_ACCEPT="application/json")
    assert response.status_code == 400 and reason in response.json()["detail"]
    assert not Worker.objects.exclude(desired_state="stopped").exists()
    assert not AuditLog.objects.filter(action="pause_worker").exists()


def test_an_action_needs_its_own_permission(client, viewer):
    grant(viewer, "pause_worker")
    client.force_login(viewer)
    response = client.post("/dashboard/act", {"op": "stop", "workers": ["annotator_1_urgency"], "confirmed": "yes"})
    assert response.status_code == 403
    assert AuditLog.objects.filter(action="refused", target="/dashboard/act").exists()


def test_stop_without_confirmation_asks_first_and_does_nothing(client, viewer):
    grant(viewer, "stop_worker")
    client.force_login(viewer)
    page = client.post("/dashboard/act", {"op": "stop", "workers": ["annotator_1_urgency", "annotator_2_urgency"]})
    assert page.status_code == 200 and b"Stop 2 workers?" in page.content and b'value="yes"' in page.content
    as_json = client.post("/dashboard/act", {"op": "stop", "workers": ["annotator_1_urgency"]},
                          HTTP_ACCEPT="application/json")
    assert as_json.status_code == 409
    assert not AuditLog.objects.filter(action="stop_worker").exists()


def test_the_page_offers_only_the_actions_the_user_may_take(client, viewer):
    grant(viewer, "pause_worker", "resume_worker")
    client.force_login(viewer)
    html = client.get("/dashboard/").content.decode()
    assert re.findall(r'name="op" value="(\w+)"', html) == ["pause", "resume"]


def test_the_action_goes_through_the_fleet_service_and_is_audited(client, viewer):
    grant(viewer, "flush_worker")
    client.force_login(viewer)
    answer = client.post("/dashboard/act", {"op": "flush", "workers": ["annotator_3_modality"]},
                         HTTP_ACCEPT="application/json").json()
    assert [r["worker"] for r in answer["results"]] == ["annotator_3_modality"]
    assert AuditLog.objects.filter(action="flush_worker", actor="viewer").exists()


def test_the_worker_page_shows_timeline_checks_and_the_logs_tail(client, viewer, settings):
    [worker] = select_workers(2, "intensity")
    WorkerEvent.objects.create(worker=worker, from_state="stopped", to_state="starting", reason="launch", actor="x")
    logs = settings.DATA_DIR / "logs"
    logs.mkdir(exist_ok=True)
    (logs / "annotator_2_intensity.log").write_text("".join(f"line {i}\n" for i in range(500)))
    client.force_login(viewer)
    html = client.get("/dashboard/workers/annotator_2_intensity/").content.decode()
    assert "line 499" in html and "line 400" in html and "line 399\n" not in html
    assert "launch" in html and "heartbeat" in html and "workbook" in html


@pytest.mark.parametrize("name", ["annotator_9_urgency", "annotator_1_nope", "nonsense", "annotator_x_urgency"])
def test_an_unknown_worker_page_is_404(client, viewer, name):
    client.force_login(viewer)
    assert client.get(f"/dashboard/workers/{name}/").status_code == 404


def test_charts_sum_the_fleet_per_minute_and_show_tokens(client, viewer):
    from datetime import timedelta

    from django.utils import timezone

    workers = select_workers(1, None)
    minute = timezone.now().replace(second=0, microsecond=0)
    WorkerMetric.objects.bulk_create(
        WorkerMetric(worker=w, at=minute - timedelta(minutes=back), throughput=10 + back, malformed_rate=0.1,
                     latency_p50_ms=100 * (1 + index), latency_p95_ms=400, queue_length=5)
        for index, w in enumerate(workers) for back in range(3))
    client.force_login(viewer)
    html = client.get("/dashboard/charts").content.decode()
    # 6 workers x 10 outcomes now, 6 x 12 two minutes ago; 10 % malformed; p50 weighted by outcomes: 350 ms.
    assert "Fleet throughput, last hour <span class=\"muted\">— latest 60 outcomes / min" in html
    assert "<td>72</td>" in html and "Malformed share, last hour" in html and "latest 10 %" in html
    assert "latest 350 / 400 ms" in html and '<span class="key-0">p50</span><span class="key-1">p95</span>' in html
    assert "<polyline" in html and "Tokens, cost and the response cache per annotator" in html
    # A time axis and a value axis with the unit, and the values on hover.
    local = timezone.localtime(minute).strftime("%H:%M")
    assert f'text-anchor="middle">{timezone.localtime(minute - timedelta(minutes=2)).strftime("%H:%M")}</text>' in html
    assert '<text class="tick unit"' in html and ">outcomes / min</text>" in html
    assert f"<title>{local}–" in html and ": 60 outcomes / min</title>" in html
    assert ": p50 350, p95 400 ms</title>" in html


def test_charts_cover_the_hour_the_day_or_the_run(client, viewer):
    from datetime import timedelta

    from django.utils import timezone

    [worker] = select_workers(1, "urgency")
    now = timezone.now().replace(second=0, microsecond=0)
    WorkerMetric.objects.bulk_create(WorkerMetric(worker=worker, at=now - timedelta(minutes=back), throughput=6,
                                                  malformed_rate=0, queue_length=1) for back in (0, 90, 600))
    client.force_login(viewer)
    hour = client.get("/dashboard/charts?range=hour").content.decode()
    day = client.get("/dashboard/charts?range=day").content.decode()
    assert hour.count("<tr><td>") - day.count("<tr><td>") < 0  # the day holds more buckets
    assert "Fleet throughput (15-minute means), last day" in day and 'data-range="day" aria-current="true"' in day
    assert "this run" in client.get("/dashboard/charts?range=run").content.decode()
    assert 'data-range="hour" aria-current="true"' in client.get("/dashboard/charts?range=<script>").content.decode()


def test_charts_give_each_annotators_cost_where_a_price_is_set(client, viewer):
    from decimal import Decimal

    from workers_app.models import AnnotatorPrice

    make_samples(3)
    store_some(1, "urgency", 3)
    store_some(2, "urgency", 3)
    AnnotatorPrice.objects.create(annotator=Annotator.objects.get(number=1), input_per_1k=Decimal(1),
                                  output_per_1k=Decimal(1), currency="EUR")
    from workers_app.models import Outcome

    Outcome.objects.filter(annotator__number=1).update(cost=Decimal("0.5"), prompt_tokens=100, completion_tokens=5)
    client.force_login(viewer)
    html = client.get("/dashboard/charts").content.decode()
    assert "<td>300</td><td>15</td><td>1.5000 EUR</td>" in html
    assert "<td>0</td><td>0</td><td>no price</td>" in html
    # 1.5 EUR stored within this minute is a rate of 90 EUR an hour.
    assert "Cost per hour in run default, last hour <span class=\"muted\">— latest 90 EUR / hour" in html


def test_charts_have_a_useful_empty_state(client, viewer):
    client.force_login(viewer)
    assert b"nothing recorded in this range (the beat records one row per worker each minute)" in client.get(
        "/dashboard/charts").content


def test_home_sends_fleet_watchers_to_the_dashboard(client, viewer):
    client.force_login(viewer)
    assert client.get("/")["Location"] == "/dashboard/"


def test_the_live_answer_is_json_that_is_never_cached(client, viewer):
    client.force_login(viewer)
    response = client.get("/dashboard/live")
    assert "no-store" in response["Cache-Control"] and json.loads(response.content)["cells"]


def test_a_cell_shows_how_many_requests_its_worker_lets_run_at_once(client, viewer):
    import time

    from workers_app.engine.live import heartbeat_key

    get_redis().hset(heartbeat_key(WorkerKey(2, "modality")), mapping={"at": time.time(), "inflight_target": 12})
    client.force_login(viewer)
    cells = client.get("/dashboard/live").json()["cells"]
    assert cells["annotator_2_modality"]["display"]["inflight"] == "up to 12 in flight"
    assert cells["annotator_1_modality"]["display"]["inflight"] == ""
