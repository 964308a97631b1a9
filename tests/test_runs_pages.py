"""The runs pages: /runs/ (every run, the form that makes one, "make current"), /runs/<name>/ (what a run came
from), /runs/compare/ (two runs, and their changed labels as CSV), and each run's consolidations on /files/."""

from __future__ import annotations

import csv
import io
import os
from decimal import Decimal

import pytest

from tests.browser.conftest import make_staff
from tests.helpers import make_samples, store_outcome

pytestmark = pytest.mark.django_db

VIEW, ADD, SWITCH, COMPARE = ("workers_app.view_run", "workers_app.add_run", "workers_app.switch_run",
                              "workers_app.compare_runs")


def make(name: str, **plan):
    from workers_app.runs.services import RunPlan, create_run

    return create_run(RunPlan(name=name, **plan), actor="maker")


@pytest.fixture
def samples(catalogue):
    return make_samples(4, vary=True)


@pytest.fixture
def runs(samples):
    """Two runs of annotator 1 on urgency over the same four samples; the second moves two labels."""
    first = make("first", description="the baseline prompt", annotators=[1], domains=["urgency"])
    second = make("second", annotators=[1], domains=["urgency"])
    for index, sample_id in enumerate(samples):
        store_outcome(first, sample_id, 1, "urgency", ["LEVEL_1"], model="small-model")
        store_outcome(second, sample_id, 1, "urgency", ["LEVEL_3" if index % 2 else "LEVEL_1"], prompt_version=2,
              model="large-model")
    return first, second


def logged_in(client, *permissions: str):
    client.force_login(make_staff("someone", *permissions))
    return client


def runs_state() -> list[tuple]:
    from audit.models import AuditLog
    from workers_app.models import Run

    return [*Run.objects.order_by("id").values_list("name", "is_current", "started_at"),
            ("audit rows", AuditLog.objects.filter(action__in=["create_run", "switch_run"]).count())]


# ------------------------------------------------------------------------------------------------ who may do what


PAGES = ("/runs/", "/runs/first/", "/runs/compare/?a=first&b=second", "/runs/compare/changed.csv?a=first&b=second")


def test_anonymous_visitors_are_sent_to_the_login_page(client, runs):
    for path in PAGES:
        response = client.get(path)
        assert response.status_code == 302 and response.url.startswith("/admin/login/"), path
    for path in ("/runs/", "/runs/first/switch"):
        response = client.post(path, {"name": "x", "confirmed": "yes"})
        assert response.status_code == 302 and response.url.startswith("/admin/login/"), path


def test_staff_without_view_run_are_refused_every_page(client, runs):
    logged_in(client, COMPARE, ADD)
    for path in PAGES:
        assert client.get(path).status_code == 403, path


def test_comparing_needs_the_compare_permission(client, runs):
    logged_in(client, VIEW)
    for path in PAGES[2:]:
        assert client.get(path).status_code == 403, path
    html = client.get("/runs/first/").content.decode()
    assert 'id="compare"' not in html


def test_making_a_run_needs_the_add_permission_and_nothing_is_made_without_it(client, runs):
    logged_in(client, VIEW)
    before = runs_state()
    assert 'id="run-form"' not in client.get("/runs/").content.decode()
    assert client.post("/runs/", {"name": "third", "annotators": [1], "domains": ["urgency"], "seed": 0}
                       ).status_code == 403
    assert runs_state() == before


def test_making_a_run_current_needs_the_switch_permission(client, runs):
    logged_in(client, VIEW)
    before = runs_state()
    assert "Make current" not in client.get("/runs/").content.decode()
    assert client.post("/runs/first/switch", {"confirmed": "yes"}).status_code == 403
    assert runs_state() == before


def test_the_nav_shows_runs_only_to_whom_may_see_them(client, runs):
    logged_in(client, "workers_app.view_sample")
    assert 'href="/runs/"' not in client.get("/samples/").content.decode()
    client.force_login(make_staff("viewer", VIEW))
    assert 'href="/runs/" aria-current="page"' in client.get("/runs/").content.decode()


# ------------------------------------------------------------------------------------------------ the list


def test_the_list_shows_each_run_with_its_figures(client, runs):
    from workers_app.models import Annotator, AnnotatorPrice, Outcome

    first, _ = runs
    AnnotatorPrice.objects.create(annotator=Annotator.objects.get(number=1), input_per_1k=Decimal("0.01"),
                                  output_per_1k=Decimal("0.02"), currency="EUR")
    Outcome.objects.filter(run=first).update(cost=Decimal("0.125"))
    first.budget = Decimal(5)
    first.save()
    response = logged_in(client, VIEW).get("/runs/")
    rows = {row.run.name: row for row in response.context["rows"]}
    assert list(rows) == ["second", "first", "default"]
    assert (rows["first"].samples, rows["first"].annotators, rows["first"].domains) == (4, 1, 1)
    assert (rows["first"].stored, rows["first"].expected, rows["first"].percent) == (4, 4, 100)
    assert [(s.amount, s.currency) for s in rows["first"].spend] == [(Decimal("0.5"), "EUR")]
    assert rows["second"].spend == []
    # The default run takes every sample, annotator and domain: 4 x 5 x 6, none stored in it.
    assert (rows["default"].samples, rows["default"].expected, rows["default"].stored) == (4, 120, 0)
    html = response.content.decode()
    first_row = html[html.index('data-run="first"'):html.index('data-run="default"')]
    assert "the baseline prompt" in first_row and "maker" in first_row and "4 / 4 (100 %)" in first_row
    assert "0.5000 EUR" in first_row and "budget 5" in first_row
    default_row = html[html.index('data-run="default"'):]
    assert "current</span>" in default_row and "0 / 120 (0 %)" in default_row


def test_without_any_run_the_page_says_what_to_do(client, catalogue):
    from workers_app.models import Run

    Run.objects.all().delete()
    html = logged_in(client, VIEW, ADD).get("/runs/").content.decode()
    assert "No run yet" in html and "No samples imported yet: a run needs samples" in html


# ------------------------------------------------------------------------------------------------ making a run


def test_the_form_makes_a_run_of_what_was_ticked_and_audits_it(client, samples):
    from audit.models import AuditLog
    from workers_app.models import Corpus, Run

    corpus = Corpus.objects.get()
    response = logged_in(client, VIEW, ADD).post("/runs/", {
        "name": "prompt-v2", "description": "new urgency wording", "annotators": [1, 3],
        "domains": ["urgency", "intensity"], "corpora": [corpus.pk], "share": "0.5", "seed": "7", "limit": "",
        "budget": "12.5"})
    assert response.status_code == 302 and response.url == "/runs/prompt-v2/"
    run = Run.objects.get(name="prompt-v2")
    assert (run.annotators, run.domains, run.budget, run.is_current) == ([1, 3], ["urgency", "intensity"],
                                                                         Decimal("12.5"), False)
    assert run.selection == {"corpora": [corpus.pk], "share": 0.5, "seed": 7, "limit": None, "samples": 2}
    assert set(run.pinned["annotators"]) == {"1", "3"} and set(run.pinned["domains"]) == {"urgency", "intensity"}
    assert AuditLog.objects.get(action="create_run", target="prompt-v2").actor == "someone"
    assert "Made run prompt-v2 with 2 samples" in client.get(response.url).content.decode()


@pytest.mark.parametrize(("changes", "message"), [
    ({"name": "first"}, "a run named 'first' exists already"),
    ({"name": "Bad Name"}, "run name 'Bad Name': 1-40 lower-case letters"),
    ({"name": "compare"}, "reserved for a page of the workspace"),
    ({"share": "1.5"}, "share 1.5: give a fraction above 0 and at most 1"),
    ({"share": "0"}, "share 0.0: give a fraction above 0"),
    ({"limit": "0"}, "limit 0: give at least 1 sample"),
    ({"budget": "-1"}, "budget -1: The budget cannot be negative."),
    ({"budget": "1e400"}, "Budget: Ensure that there are no more than 14 digits in total."),
    ({"budget": "1.23456"}, "Budget: Ensure that there are no more than 4 decimal places."),
    ({"share": "nan"}, "Share: Enter a number."),
    ({"annotators": []}, "Choose at least one annotator."),
    ({"annotators": [77]}, "Select a valid choice. 77 is not one of the available choices."),
    ({"domains": ["urgency", "../etc"]}, "Select a valid choice. ../etc is not one of the available choices."),
    ({"corpora": ["x"]}, "Corpora: Select a valid choice. x is not one of the available choices."),
    ({"seed": "-1"}, "Seed: Ensure this value is greater than or equal to 0."),
    ({"description": "line\x07bell"}, "Description: Control characters are not allowed here."),
    ({"name": "x" * 41}, "Name: Ensure this value has at most 40 characters"),
    ({"name": "nul\x00"}, "Name: Null characters are not allowed."),
])
def test_a_refused_form_says_why_and_makes_nothing(client, runs, changes, message):
    posted = {"name": "third", "annotators": [1], "domains": ["urgency"], "seed": "0", **changes}
    before = runs_state()
    response = logged_in(client, VIEW, ADD).post("/runs/", posted)
    assert response.status_code == 400
    assert message in response.content.decode().replace("&#x27;", "'")
    assert runs_state()[:-1] == before[:-1]
    from workers_app.models import Run

    assert not Run.objects.exclude(name__in=["default", "first", "second"]).exists()


def test_a_choice_that_takes_no_sample_is_refused(client, catalogue):
    from workers_app.models import Run

    response = logged_in(client, VIEW, ADD).post("/runs/", {"name": "empty", "annotators": [1],
                                                             "domains": ["urgency"], "seed": "0"})
    assert response.status_code == 400
    assert "this choice takes no sample" in response.content.decode()
    assert not Run.objects.filter(name="empty").exists()


# ------------------------------------------------------------------------------------------------ make current


def test_make_current_without_confirmation_asks_first_and_changes_nothing(client, runs):
    before = runs_state()
    response = logged_in(client, VIEW, SWITCH).post("/runs/first/switch")
    assert response.status_code == 200
    html = response.content.decode()
    assert "Make run first current?" in html and "The fleet now works on run default" in html
    assert 'name="confirmed" value="yes"' in html
    assert runs_state() == before


def test_make_current_once_confirmed_switches_and_audits(client, runs):
    from audit.models import AuditLog
    from workers_app.models import Run

    response = logged_in(client, VIEW, SWITCH).post("/runs/first/switch", {"confirmed": "yes"})
    assert response.status_code == 302 and response.url == "/runs/"
    assert list(Run.objects.filter(is_current=True).values_list("name", flat=True)) == ["first"]
    entry = AuditLog.objects.get(action="switch_run", target="first")
    assert (entry.actor, entry.parameters) == ("someone", {"from": "default"})
    assert "Run first is current" in client.get("/runs/").content.decode()


def test_making_the_current_run_current_again_is_refused(client, runs):
    before = runs_state()
    response = logged_in(client, VIEW, SWITCH).post("/runs/default/switch", {"confirmed": "yes"})
    assert response.status_code == 400
    assert "run default is the current run already" in response.content.decode()
    assert runs_state()[:-1] == before[:-1]


@pytest.mark.parametrize("name", ["nosuchrun", "..", "first%00", "FIRST", "a" * 41])
def test_make_current_of_an_unknown_or_hostile_name_is_not_found(client, runs, name):
    before = runs_state()
    assert logged_in(client, VIEW, SWITCH).post(f"/runs/{name}/switch", {"confirmed": "yes"}).status_code == 404
    assert runs_state() == before


def test_make_current_is_a_post_only(client, runs):
    assert logged_in(client, VIEW, SWITCH).get("/runs/first/switch").status_code == 405


# ------------------------------------------------------------------------------------------------ one run


def test_a_run_page_holds_what_is_needed_to_make_it_again(client, runs):
    from workers_app.models import Domain, MalformedAttempt, Outcome

    first, _ = runs
    outcome = Outcome.objects.filter(run=first).order_by("id").first()
    Outcome.objects.filter(pk=outcome.pk).update(status="malformed", labels=[])
    MalformedAttempt.objects.create(run=first, sample_id=outcome.sample_id, annotator_id=outcome.annotator_id,
                                    domain_id=outcome.domain_id, attempt=1, reason="no_marker", prompt_version=1)
    urgency = Domain.objects.get(slug="urgency")
    urgency.prompt_template = "A new wording {text}"
    urgency.save()  # the catalogue moves on to version 2; the run keeps what it pinned
    html = logged_in(client, VIEW, COMPARE).get("/runs/first/").content.decode()
    pinned = first.pinned["domains"]["urgency"]
    for expected in ("the baseline prompt", "maker", first.code_version, "builtin-lexicon-v1", "Baseline A",
                     "LEVEL_4</code> critical", "(the catalogue is at version 2 now)", "every corpus",
                     "I have a plan to end my life tonight.", "were pinned when the run was made",
                     '<td data-worker="1-urgency">4 / 4<br><span class="badge status-malformed">1 malformed</span>',
                     "(1 malformed answer in all)", "<code>small-model</code>"):
        assert expected in html, expected
    assert "Rate how urgently the writer needs professional help." in pinned["prompt_template"]
    assert "Rate how urgently the writer needs professional help." in html and "A new wording" not in html
    assert '<option value="second">second</option>' in html and '<input type="hidden" name="a" value="first">' in html


def test_the_default_run_page_says_it_shows_the_live_catalogue(client, catalogue):
    from workers_app.models import Domain

    urgency = Domain.objects.get(slug="urgency")
    urgency.prompt_template = "A new wording {text}"
    urgency.save()
    html = logged_in(client, VIEW).get("/runs/default/").content.decode()
    assert "This run pins nothing: it follows the live catalogue" in html
    assert "A new wording" in html and "Every sample in the store, also those imported later" in html
    assert "No outcome yet." in html


def test_a_run_page_of_an_unknown_or_hostile_name_is_not_found(client, runs):
    logged_in(client, VIEW)
    for name in ("nosuchrun", "..", "%00", "FIRST"):
        assert client.get(f"/runs/{name}/").status_code == 404, name


def test_a_run_page_links_its_consolidations_for_whom_may_download_them(client, runs, settings, tmp_path):
    settings.DATA_DIR = tmp_path
    folder = tmp_path / "runs" / "first" / "consolidated"
    folder.mkdir(parents=True)
    (folder / "consolidated-20260101-000000.xlsx").write_bytes(b"PK")
    logged_in(client, VIEW)
    assert "consolidated-20260101-000000.xlsx" not in client.get("/runs/first/").content.decode()
    client.force_login(make_staff("consolidator", VIEW, "admin_ops.consolidate"))
    html = client.get("/runs/first/").content.decode()
    assert 'href="/files/runs/first/consolidated/consolidated-20260101-000000.xlsx"' in html
    assert "No consolidation of this run yet" in client.get("/runs/second/").content.decode()


# ------------------------------------------------------------------------------------------------ comparing


def test_the_compare_page_shows_the_figures_and_the_changed_labels(client, runs, samples):
    from workers_app.models import Sample

    response = logged_in(client, VIEW, COMPARE).get("/runs/compare/", {"a": "first", "b": "second"})
    assert response.status_code == 200
    comparison = response.context["comparison"]
    (pair,) = comparison.pairs
    assert (pair.domain, pair.annotator, pair.n, pair.changed, pair.identical) == ("urgency", 1, 4, 2, 0.5)
    html = response.content.decode()
    table = html[html.index('<table class="compare" data-domain="urgency">'):html.index("</table>")]
    assert '<td class="num">4</td>' in table and "50.0 %" in table and "0.000" in table
    assert "v1 · <code>small-model</code> (4)" in table and "v2 · <code>large-model</code> (4)" in table
    changed = [Sample.objects.get(pk=pk).external_id for pk in samples[1::2]]
    for external_id in changed:
        # Each changed sample links to its page by the external id it is named by.
        assert (f'<tr><td><a href="/samples/{external_id}/">{external_id}</a></td><td>LEVEL_1</td><td>LEVEL_3</td>'
                "</tr>") in html
    assert 'href="/runs/compare/changed.csv?a=first&amp;b=second"' in html


def test_runs_with_nothing_in_common_say_so(client, runs, samples):
    third = make("third", annotators=[2], domains=["urgency"])
    store_outcome(third, samples[0], 2, "urgency", ["LEVEL_1"])
    html = logged_in(client, VIEW, COMPARE).get("/runs/compare/", {"a": "first", "b": "third"}).content.decode()
    assert 'id="nothing-in-common"' in html and "Nothing in common" in html and "Download" not in html


@pytest.mark.parametrize(("query", "message"), [
    ({"b": "second"}, "parameter a: missing: name the first run."),
    ({"a": "first"}, "parameter b: missing: name the second run."),
    ({"a": "first", "b": "nosuchrun"}, "parameter b: no run named “nosuchrun”."),
    ({"a": "../../etc", "b": "second"}, "parameter a: “../../etc” is not a run name."),
    ({"a": "first", "b": "x\x00"}, "parameter b: Null characters are not allowed."),
    ({"a": "first", "b": "y" * 41}, "parameter b: Ensure this value has at most 40 characters"),
    ({"a": "first", "b": "first"}, "run first compared with itself: choose two different runs"),
])
def test_bad_compare_parameters_are_a_400_naming_the_parameter(client, runs, query, message):
    logged_in(client, VIEW, COMPARE)
    page = client.get("/runs/compare/", query)
    assert page.status_code == 400 and message in page.content.decode()
    download = client.get("/runs/compare/changed.csv", query)
    assert download.status_code == 400 and message in download.content.decode()


def test_the_csv_holds_every_changed_label_and_no_formula(client, runs, samples):
    from workers_app.models import Sample

    Sample.objects.filter(pk=samples[1]).update(external_id='=HYPERLINK("http://evil.example","x")')
    Sample.objects.filter(pk=samples[3]).update(external_id="+cmd|' /C calc'!A0")
    response = logged_in(client, VIEW, COMPARE).get("/runs/compare/changed.csv", {"a": "first", "b": "second"})
    assert response.status_code == 200 and response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"] == 'attachment; filename="changed-labels-first-vs-second.csv"'
    rows = list(csv.reader(io.StringIO(response.content.decode())))
    assert rows == [["domain", "annotator", "sample", "label in first", "label in second"],
                    ["urgency", "1", '\'=HYPERLINK("http://evil.example","x")', "LEVEL_1", "LEVEL_3"],
                    ["urgency", "1", "'+cmd|' /C calc'!A0", "LEVEL_1", "LEVEL_3"]]


def test_the_csv_is_not_capped_like_the_page(client, runs, samples, monkeypatch):
    from workspace.runs import views

    monkeypatch.setattr(views, "CHANGES_KEPT", 1)
    logged_in(client, VIEW, COMPARE)
    html = client.get("/runs/compare/", {"a": "first", "b": "second"}).content.decode()
    assert "2 changed labels (the first 1 here; the CSV has all)" in html
    rows = list(csv.reader(io.StringIO(client.get("/runs/compare/changed.csv", {"a": "first", "b": "second"})
                                       .content.decode())))
    assert len(rows) == 3


# ------------------------------------------------------------------------------------------------ /files/


@pytest.fixture
def data_dir(settings, tmp_path):
    settings.DATA_DIR = tmp_path
    (tmp_path / "secret_key").write_text("do not serve me")
    (tmp_path / "consolidated").mkdir()
    (tmp_path / "consolidated" / "secret.xlsx").write_bytes(b"not a run's")
    return tmp_path


def consolidated_by(run, name: str, actor) -> None:
    from audit.actions import Action
    from audit.services import audited
    from workers_app.runs.files import run_dir

    folder = run_dir(run) / "consolidated"
    folder.mkdir(parents=True, exist_ok=True)
    with audited(Action.CONSOLIDATE, actor=actor, target=name, parameters={"run": run.name}):
        for suffix in (".xlsx", ".csv", ".jsonl"):
            (folder / name.replace(".xlsx", suffix)).write_bytes(f"{run.name} {suffix}".encode())


def test_files_lists_each_runs_consolidations_with_the_run_and_who_made_them(client, runs, data_dir):
    first, second = runs
    maker = make_staff("maker-1", "admin_ops.consolidate")
    consolidated_by(first, "consolidated-20260101-000000.xlsx", maker)
    consolidated_by(second, "consolidated-20260101-000000.xlsx", "cli:ops")  # the same name in another run
    logged_in(client, "admin_ops.consolidate", VIEW)
    response = client.get("/files/")
    listed = {entry.run: entry.consolidations for entry in response.context["run_consolidations"]}
    assert list(listed) == ["second", "first"]
    assert [(c.workbook, c.made_by) for c in listed["first"]] == [("consolidated-20260101-000000.xlsx", "maker-1")]
    assert [c.made_by for c in listed["second"]] == ["cli:ops"]
    assert [f.name for f in listed["first"][0].files] == [
        "consolidated-20260101-000000.xlsx", "consolidated-20260101-000000.csv", "consolidated-20260101-000000.jsonl"]
    html = response.content.decode()
    assert 'href="/files/runs/first/consolidated/consolidated-20260101-000000.csv"' in html
    assert '<a href="/runs/first/">first</a>' in html and "Made before runs existed" in html


def test_a_runs_consolidation_downloads_from_its_own_folder(client, runs, data_dir):
    first, second = runs
    consolidated_by(first, "consolidated-1.xlsx", "cli:ops")
    consolidated_by(second, "consolidated-1.xlsx", "cli:ops")
    logged_in(client, "admin_ops.consolidate")
    response = client.get("/files/runs/second/consolidated/consolidated-1.csv")
    assert response.status_code == 200
    assert response["Content-Disposition"] == 'attachment; filename="consolidated-1.csv"'
    assert b"".join(response.streaming_content) == b"second .csv"


def test_a_runs_consolidation_needs_the_consolidate_permission(client, runs, data_dir):
    first, _ = runs
    consolidated_by(first, "consolidated-1.xlsx", "cli:ops")
    logged_in(client, VIEW)
    assert client.get("/files/runs/first/consolidated/consolidated-1.xlsx").status_code == 403
    assert "consolidated-1.xlsx" not in client.get("/files/").content.decode()


@pytest.mark.parametrize("path", [
    "/files/runs/../consolidated/secret.xlsx",
    "/files/runs/..%2F..%2Fconsolidated/secret.xlsx",
    "/files/runs/%2E%2E/consolidated/secret.xlsx",
    "/files/runs/../../consolidated/secret_key",
    "/files/runs/first%00/consolidated/consolidated-1.xlsx",
    "/files/runs/first/consolidated/..%2F..%2F..%2Fsecret_key",
    "/files/runs/first/consolidated/%2E%2E",
    "/files/runs/FIRST/consolidated/consolidated-1.xlsx",
    "/files/runs/ghost/consolidated/consolidated-1.xlsx",
    "/files/runs/first/consolidated/notes.txt",
    "/files/runs/first/consolidated/.consolidated-2.xlsx.tmp",
    "/files/runs/first/consolidated/link.xlsx",
    "/files/runs/linked/consolidated/secret.xlsx",
    "/files/runs/outer/consolidated/secret.xlsx",
])
def test_hostile_run_downloads_are_not_found(client, runs, data_dir, path):
    from workers_app.runs.files import run_dir

    first, _ = runs
    consolidated_by(first, "consolidated-1.xlsx", "cli:ops")
    folder = run_dir(first) / "consolidated"
    (folder / "notes.txt").write_text("not a consolidation")
    (folder / ".consolidated-2.xlsx.tmp").write_bytes(b"half")
    os.symlink(data_dir / "secret_key", folder / "link.xlsx")
    ghost = data_dir / "runs" / "ghost" / "consolidated"  # a folder no run of the store owns
    ghost.mkdir(parents=True)
    (ghost / "consolidated-1.xlsx").write_bytes(b"ghost")
    linked = make("linked", annotators=[1], domains=["urgency"])  # its consolidated folder leads elsewhere
    run_dir(linked).mkdir(parents=True)
    os.symlink(data_dir / "consolidated", run_dir(linked) / "consolidated", target_is_directory=True)
    outer = make("outer", annotators=[1], domains=["urgency"])  # its whole folder does
    os.symlink(data_dir, run_dir(outer), target_is_directory=True)
    logged_in(client, "admin_ops.consolidate", VIEW)
    assert client.get(path).status_code == 404
    listed = {entry.run for entry in client.get("/files/").context["run_consolidations"]}
    assert listed == {"first"}
