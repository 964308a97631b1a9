"""Every read of outcomes is of one run: the current run unless the reader names another, and it says which.

Two runs hold outcomes of the same samples with different labels: 'default' (every sample, annotator 1 said
LEVEL_1) and 'second' (two samples, annotator 1 x urgency only, said LEVEL_3), and 'second' is current. Each page,
API answer and command shows the current run's outcomes only, the other run's when asked, and refuses a run name
that names no run.
"""

from __future__ import annotations

import csv
from datetime import timedelta
from decimal import Decimal

import openpyxl
import pytest
from django.core.management import CommandError, call_command
from django.test import Client
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families

from admin_ops.services.consolidate import consolidate
from tests.api.conftest import TokenClient, make_token
from tests.browser.conftest import make_staff
from tests.helpers import make_samples
from workers_app.engine.cost import cost_totals
from workers_app.fleet.rows import ensure_worker_rows
from workers_app.fleet.selectors import UnknownRun, chosen_run
from workers_app.models import Annotator, Domain, MalformedAttempt, Outcome, ReviewItem, Run, Sample
from workers_app.runs.current import current_run
from workers_app.runs.services import RunPlan, create_run, switch_run

pytestmark = pytest.mark.django_db

FIRST, SECOND = "LEVEL_1", "LEVEL_3"


def store(run: Run, sample_id: int, label: str, *, tokens: int, created_at=None) -> Outcome:
    return Outcome.objects.create(
        run=run, sample_id=sample_id, annotator=Annotator.objects.get(number=1),
        domain=Domain.objects.get(slug="urgency"), status="ok", labels=[label], model="m", prompt_version=1,
        prompt_tokens=tokens, completion_tokens=0, latency_ms=100, cost=Decimal(tokens) / 1000,
        started_at=timezone.now(), created_at=created_at or timezone.now())


def attempt(run: Run, sample_id: int, raw: str) -> MalformedAttempt:
    return MalformedAttempt.objects.create(
        run=run, sample_id=sample_id, annotator=Annotator.objects.get(number=1),
        domain=Domain.objects.get(slug="urgency"), attempt=1, reason="no_marker", raw_answer=raw, prompt_version=1)


@pytest.fixture
def runs(catalogue) -> dict:
    """'default' with an outcome of each of four samples, 'second' (current) with outcomes of its two."""
    ids = make_samples(4, vary=True)
    ensure_worker_rows()
    default = current_run()
    for pk in ids:
        store(default, pk, FIRST, tokens=1000)
    attempt(default, ids[0], "first-run-garble")
    second = create_run(RunPlan(name="second", annotators=[1], domains=["urgency"], limit=2), actor="tester")
    for pk in ids[:2]:
        store(second, pk, SECOND, tokens=10)
    attempt(second, ids[1], "second-run-garble")
    switch_run(second, actor="tester")  # rebuilds the live counters from the second run's outcomes
    default.refresh_from_db()
    return {"default": default, "second": second, "samples": Sample.objects.filter(pk__in=ids).order_by("pk")}


@pytest.fixture
def looker(client, runs) -> Client:
    client.force_login(make_staff("looker", "workers_app.view_sample", "workers_app.view_worker",
                                  "workers_app.review_sample"))
    return client


@pytest.fixture
def api(runs, roles) -> TokenClient:
    return TokenClient(make_token(roles["operator"], "scoping"))


@pytest.fixture
def roles(django_user_model) -> dict:
    from django.contrib.auth.models import Group

    call_command("seed_defaults")
    user = django_user_model.objects.create_user("operator", password="pw-for-tests", is_staff=True)
    user.groups.add(Group.objects.get(name="operator"))
    return {"operator": user}


# ------------------------------------------------------------------------------------------ the shared lookup


def test_chosen_run_is_the_current_run_unless_one_is_named(runs):
    assert chosen_run(None).name == chosen_run("").name == "second"
    assert chosen_run("default").pk == runs["default"].pk


def test_chosen_run_refuses_a_name_that_names_no_run_listing_those_there_are(runs):
    with pytest.raises(UnknownRun, match=r"no run named 'nope'; the runs are default, second"):
        chosen_run("nope")


# ------------------------------------------------------------------------------------------ the dashboard


def test_the_dashboard_names_the_current_run_and_counts_its_samples_only(looker):
    html = looker.get("/dashboard/").content.decode()
    assert 'Current run: <a href="/runs/second/">second</a>' in html
    data = looker.get("/dashboard/live").json()
    assert data["run"] == "second"
    taking = data["cells"]["annotator_1_urgency"]
    assert (taking["done"], taking["total"], taking["display"]["progress"]) == (2, 2, "2 / 2")
    left_out = data["cells"]["annotator_2_urgency"]
    assert (left_out["total"], left_out["in_run"], left_out["display"]["progress"]) == (0, False, "not in this run")
    assert data["totals"]["total"] == 2 and data["totals"]["done"] == 2


def test_the_dashboard_charts_spend_only_the_current_runs_tokens(looker):
    html = looker.get("/dashboard/charts").content.decode()
    assert "per annotator in run second" in html
    assert "<td>annotator 1 (" in html and "</td><td>20</td><td>0</td>" in html  # 2 x 10, not 4 x 1000 + 20


def test_the_worker_page_says_whether_the_current_run_takes_the_worker(looker):
    taking = looker.get("/dashboard/workers/annotator_1_urgency/").content.decode()
    assert '<a href="/runs/second/">second</a> (the current run)</dd>' in taking and "2 of 2" in taking
    left_out = looker.get("/dashboard/workers/annotator_2_urgency/").content.decode()
    assert "this worker is not in this run" in left_out


# ------------------------------------------------------------------------------------------ the samples pages


def listed(client: Client, **params) -> list[str]:
    response = client.get("/samples/", params)
    assert response.status_code == 200
    return [row.sample.external_id for row in response.context["rows"]]


def test_the_sample_list_holds_the_current_runs_samples_and_outcomes(looker, runs):
    ids = [s.external_id for s in runs["samples"]]
    response = looker.get("/samples/")
    assert [row.sample.external_id for row in response.context["rows"]] == ids[:2]
    assert [row.done for row in response.context["rows"]] == [1, 1] and response.context["cells"] == 1
    assert 'run <a href="/runs/second/">second</a> (the current run)' in response.content.decode()
    assert listed(looker, level_4="on") == []


def test_the_sample_list_shows_another_run_when_asked(looker, runs):
    ids = [s.external_id for s in runs["samples"]]
    assert listed(looker, run="default") == ids
    response = looker.get("/samples/", {"run": "default"})
    assert response.context["cells"] == 30 and response.context["run"].name == "default"
    assert listed(looker, run="default", status="malformed") == []


def test_the_sample_list_names_a_bad_run_and_shows_the_current_one(looker, runs):
    response = looker.get("/samples/", {"run": "nope"})
    assert response.status_code == 200
    assert "Run: Select a valid choice. nope is not one of the available choices. This filter was ignored." in (
        response.content.decode())
    assert response.context["run"].name == "second" and len(response.context["rows"]) == 2


def test_the_sample_page_shows_the_current_runs_labels_and_the_others_when_asked(looker, runs):
    sample = runs["samples"][0]
    current = looker.get(f"/samples/{sample.pk}/")
    html = current.content.decode()
    assert SECOND in html and FIRST not in html and "second-run-garble" not in html
    assert [[cell.key for cell in row] for row in current.context["view"].grid] == [["annotator_1_urgency"]]
    assert "Labels and agreement in run second" in html and 'href="?run=default">default</a>' in html
    other = looker.get(f"/samples/{sample.pk}/", {"run": "default"}).content.decode()
    assert FIRST in other and SECOND not in other and "first-run-garble" in other


def test_the_sample_page_says_when_the_run_does_not_take_the_sample(looker, runs):
    html = looker.get(f"/samples/{runs['samples'][3].pk}/").content.decode()
    assert "this run does not take this sample" in html and FIRST not in html


def test_the_sample_page_refuses_a_bad_run_with_a_404(looker, runs):
    assert looker.get(f"/samples/{runs['samples'][0].pk}/", {"run": "nope"}).status_code == 404
    assert looker.get(f"/samples/{runs['samples'][0].pk}/", {"run": "<script>"}).status_code == 404


# ------------------------------------------------------------------------------------------ the review pages


def test_a_review_item_shows_the_current_runs_labels(looker, runs):
    item = ReviewItem.objects.create(sample=runs["samples"][0], reasons=["level_4"], risk=100)
    html = looker.get(f"/review/{item.pk}/").content.decode()
    assert SECOND in html and FIRST not in html
    listing = looker.get("/review/").content.decode()
    assert SECOND in listing and FIRST not in listing


# ------------------------------------------------------------------------------------------ the API


def test_the_api_lists_the_current_runs_outcomes_unless_another_is_named(api):
    current = api.get("/api/v1/outcomes").json()
    assert current["count"] == 2 and {(o["run"], o["labels"][0]) for o in current["results"]} == {("second", SECOND)}
    other = api.get("/api/v1/outcomes", {"run": "default"}).json()
    assert other["count"] == 4 and {(o["run"], o["labels"][0]) for o in other["results"]} == {("default", FIRST)}


@pytest.mark.parametrize("path", ["/api/v1/outcomes", "/api/v1/costs", "/api/v1/progress", "/api/v1/review"])
def test_the_api_answers_an_unknown_run_404_naming_run(api, path):
    response = api.get(path, {"run": "nope"})
    assert response.status_code == 404
    assert response.json() == {"error": "unknown_run",
                               "detail": "run: no run named 'nope'; the runs are default, second"}


def test_the_api_costs_are_of_one_run(api):
    [current] = api.get("/api/v1/costs").json()
    assert (current["outcomes"], Decimal(current["cost"])) == (2, Decimal("0.02"))
    [other] = api.get("/api/v1/costs", {"run": "default"}).json()
    assert (other["outcomes"], Decimal(other["cost"])) == (4, Decimal(4))


def test_the_api_progress_counts_the_runs_samples_and_the_workers_it_takes(api):
    current = api.get("/api/v1/progress").json()
    assert (current["run"], current["samples"], current["done"], current["expected"]) == ("second", 2, 2, 2)
    rows = {row["worker"]: row for row in current["workers"]}
    assert (rows["annotator_1_urgency"]["in_run"], rows["annotator_1_urgency"]["percent"]) == (True, 100.0)
    assert (rows["annotator_2_urgency"]["in_run"], rows["annotator_2_urgency"]["expected"]) == (False, 0)
    other = api.get("/api/v1/progress", {"run": "default"}).json()  # counted from the store: not the live run
    assert (other["run"], other["samples"], other["done"], other["expected"]) == ("default", 4, 4, 120)
    assert {row["worker"]: row["done"] for row in other["workers"]}["annotator_1_urgency"] == 4


def test_the_api_worker_and_health_answers_name_the_current_run(api):
    rows = {row["worker"]: row for row in api.get("/api/v1/workers").json()}
    assert {row["run"] for row in rows.values()} == {"second"}
    assert (rows["annotator_1_urgency"]["in_run"], rows["annotator_2_urgency"]["in_run"]) == (True, False)
    assert rows["annotator_1_urgency"]["ok"] == 2
    assert api.get("/api/v1/workers/annotator_1_urgency").json()["run"] == "second"
    assert api.get("/api/v1/health").json()["run"] == "second"


def test_the_api_review_list_gives_the_named_runs_urgency_labels(api, runs):
    ReviewItem.objects.create(sample=runs["samples"][0], reasons=["level_4"], risk=100)
    assert api.get("/api/v1/review").json()["results"][0]["urgency"]["1"] == SECOND
    assert api.get("/api/v1/review", {"run": "default"}).json()["results"][0]["urgency"]["1"] == FIRST


def test_a_named_runs_review_sheet_and_review_list_hold_its_items_only(api, runs, tmp_path):
    for sample in runs["samples"]:  # four flagged posts; 'second' takes two of them
        ReviewItem.objects.create(sample=sample, reasons=["level_4"], risk=100)
    in_second = set(runs["second"].members.values_list("sample__external_id", flat=True))
    assert len(in_second) == 2

    report = consolidate(tmp_path / "second.xlsx", actor="tester", run=runs["second"])

    sheet = list(openpyxl.load_workbook(report.path)["Review"].iter_rows(values_only=True))[1:]
    assert {row[0] for row in sheet} == in_second and report.review == 2
    texts = dict(Sample.objects.values_list("external_id", "text"))
    assert {row[-1] for row in sheet} == {texts[external_id] for external_id in in_second}
    assert {row["sample"] for row in api.get("/api/v1/review").json()["results"]} == in_second
    assert len(api.get("/api/v1/review", {"run": "default"}).json()["results"]) == 4


def test_metrics_name_the_current_run_and_time_its_outcomes_only(runs):
    response = Client().get("/metrics")
    families = {f.name: f for f in text_string_to_metric_families(response.content.decode())}
    assert [(s.labels, s.value) for s in families["annotation_current_run"].samples] == [({"run": "second"}, 1)]
    [count] = [s.value for s in families["annotation_llm_latency_seconds"].samples
               if s.name.endswith("_count") and s.labels["annotator"] == "1"]
    assert count == 2


# ------------------------------------------------------------------------------------------ engine and monitoring


def test_cost_totals_read_one_run_or_every_run_when_asked(runs):
    [second] = cost_totals(run=runs["second"])
    [default] = cost_totals(run=runs["default"])
    [every] = cost_totals(run=None)
    assert (second.outcomes, default.outcomes, every.outcomes) == (2, 4, 6)
    assert every.cost == second.cost + default.cost


def test_the_minutes_metrics_count_the_current_runs_outcomes(runs):
    from workers_app.models import WorkerMetric
    from workers_app.monitoring.metrics import snapshot_metrics

    last_minute = timezone.now().replace(second=0, microsecond=0) - timedelta(seconds=30)
    sample = runs["samples"][2].pk
    store(runs["second"], sample, SECOND, tokens=1, created_at=last_minute)
    Outcome.objects.filter(run=runs["default"]).update(created_at=last_minute)
    snapshot_metrics()
    row = WorkerMetric.objects.get(worker__annotator__number=1, worker__domain__slug="urgency")
    assert row.throughput == 1


# ------------------------------------------------------------------------------------------ the command


def exported(path) -> list[str]:
    with path.open(encoding="utf-8") as handle:
        return [row["raw_answer"] for row in csv.DictReader(handle)]


def test_export_malformed_writes_the_current_runs_attempts_or_the_named_runs(runs, tmp_path, capsys):
    call_command("export_malformed", str(tmp_path / "current.csv"))
    assert exported(tmp_path / "current.csv") == ["second-run-garble"]
    assert "of run second" in capsys.readouterr().out
    call_command("export_malformed", str(tmp_path / "default.csv"), "--run", "default")
    assert exported(tmp_path / "default.csv") == ["first-run-garble"]


def test_export_malformed_refuses_an_unknown_run_and_writes_nothing(runs, tmp_path):
    with pytest.raises(CommandError, match=r"--run: no run named 'nope'; the runs are default, second"):
        call_command("export_malformed", str(tmp_path / "x.csv"), "--run", "nope")
    assert not (tmp_path / "x.csv").exists()


# ------------------------------------------------------------------------------------------ the admin


def test_the_outcome_admin_lists_the_current_run_unless_another_or_every_run_is_chosen(client, runs):
    client.force_login(make_staff("looker", "workers_app.view_sample"))
    current = client.get("/admin/workers_app/outcome/")
    assert current.status_code == 200
    assert {o.run.name for o in current.context["cl"].result_list} == {"second"}
    assert len(current.context["cl"].result_list) == 2
    assert "second (current)" in current.content.decode()
    other = client.get("/admin/workers_app/outcome/", {"run": "default"}).context["cl"].result_list
    assert len(other) == 4 and {o.labels[0] for o in other} == {FIRST}
    assert len(client.get("/admin/workers_app/outcome/", {"run": "*"}).context["cl"].result_list) == 6


def test_the_outcome_admin_refuses_an_unknown_run_and_staff_without_view_sample(client, runs):
    client.force_login(make_staff("looker", "workers_app.view_sample"))
    response = client.get("/admin/workers_app/outcome/", {"run": "nope"})
    assert response.status_code == 302 and response["Location"].endswith("?e=1")
    client.force_login(make_staff("watcher", "workers_app.view_worker"))
    assert client.get("/admin/workers_app/outcome/").status_code == 403


def test_the_fleet_admin_counts_the_current_runs_samples(client, runs):
    client.force_login(make_staff("watcher", "workers_app.view_worker"))
    html = client.get("/admin/workers_app/worker/").content.decode()
    assert "Progress in the current run, second" in html
    assert "2 / 2" in html and "not in this run" in html
