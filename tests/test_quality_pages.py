"""The quality pages: /quality/ (a run against a reference set: the labellers side by side with their intervals,
the confusion matrices, the worst items linking to the sample pages), /quality/references/ (the sets, the import
form, delete with a confirmation), who may see and do what, and the run comparison's accuracy columns."""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from tests.browser.conftest import make_staff
from tests.helpers import make_samples, store_outcome
from workers_app.models import ReferenceLabel, ReferenceSet, Sample
from workers_app.references.importer import import_reference
from workers_app.references.options import Layout
from workers_app.runs.current import current_run
from workers_app.runs.services import RunPlan, create_run

pytestmark = pytest.mark.django_db

VIEW = ("workers_app.view_quality", "workers_app.view_referenceset")
LEVELS = ["LEVEL_0", "LEVEL_1", "LEVEL_2", "LEVEL_3", "LEVEL_4"]


@pytest.fixture
def measured(catalogue, tmp_path):
    """Six posts; the reference says LEVEL_0..LEVEL_4, LEVEL_4; annotator 1 agrees but for the first (LEVEL_4 for
    LEVEL_0), annotator 2 says LEVEL_2 throughout."""
    samples = make_samples(6, vary=True)
    truth = [*LEVELS, "LEVEL_4"]
    for index, sample in enumerate(samples):
        store_outcome(current_run(), sample, 1, "urgency", ["LEVEL_4" if index == 0 else truth[index]])
        store_outcome(current_run(), sample, 2, "urgency", ["LEVEL_2"])
    ids = dict(Sample.objects.filter(pk__in=samples).values_list("pk", "external_id"))
    path = tmp_path / "gold.csv"
    path.write_text("ID,Risk\n" + "".join(f"{ids[s]},{truth[i]}\n" for i, s in enumerate(samples)))
    import_reference(path, name="gold", layout=Layout(labels={"urgency": "Risk"}), actor="test")
    return samples, ids


def logged_in(client, *permissions: str, name: str = "someone"):
    client.force_login(make_staff(name, *permissions))
    return client


def test_the_page_shows_each_labeller_with_intervals_the_confusion_matrix_and_the_worst_items(client, measured):
    samples, ids = measured
    page = logged_in(client, *VIEW, "workers_app.view_sample").get("/quality/")

    assert page.status_code == 200
    html = page.content.decode()
    assert 'data-row="annotator-1"' in html and 'data-row="annotator-2"' in html
    assert 'data-row="majority"' in html and 'data-row="dawid_skene"' in html
    assert "0.833" in html  # annotator 1: 5 of 6
    assert 'class="bar"' in html and 'class="range"' in html
    assert 'class="heat-5 diagonal">1<' in html  # a reference row of one item, given right
    assert f'href="/samples/{samples[0]}/">{ids[samples[0]]}</a>' in html  # annotator 1's worst: 4 levels off
    assert "Quality" in html and 'aria-current="page">Quality' in html


def test_a_run_and_set_can_be_chosen_and_bad_choices_are_named(client, measured):
    client = logged_in(client, *VIEW)
    assert client.get("/quality/?run=default&reference=gold").status_code == 200
    refused = client.get("/quality/?run=nope&reference=gold")
    assert refused.status_code == 400
    assert "parameter run: Select a valid choice. nope is not one of the available choices." in \
        refused.content.decode()


def test_without_a_reference_set_the_page_says_how_to_make_one(client, catalogue):
    page = logged_in(client, *VIEW).get("/quality/")
    assert page.status_code == 200 and "No reference set yet." in page.content.decode()


@pytest.mark.parametrize("path", ["/quality/", "/quality/references/"])
def test_staff_without_the_permissions_are_refused(client, measured, path):
    assert logged_in(client, "workers_app.view_sample").get(path).status_code == 403


def test_anonymous_visitors_go_to_the_login_page(client, measured):
    answer = client.get("/quality/")
    assert answer.status_code == 302 and "/admin/login/" in answer["Location"]


def test_the_references_page_imports_a_file_through_the_form(client, measured, tmp_path):
    samples, ids = measured
    client = logged_in(client, *VIEW, "workers_app.add_referenceset")
    upload = SimpleUploadedFile("crowd.csv", "".join(["ID,Risk\n", *(f"{ids[s]},Attempt\n" for s in samples)])
                                .encode(), content_type="text/csv")

    answer = client.post("/quality/references/", {
        "file": upload, "name": "crowd", "label_columns": "urgency=Risk", "map": "urgency:Attempt=LEVEL_4",
        "kind": "crowd", "citation": "A crowd, 2026"}, follow=True)

    assert answer.status_code == 200
    assert "reference set crowd: 6 label(s) (urgency 6)." in answer.content.decode()
    found = ReferenceSet.objects.get(name="crowd")
    assert (found.kind, found.citation, found.value_map) == ("crowd", "A crowd, 2026",
                                                             {"urgency": {"Attempt": "LEVEL_4"}})


def test_a_refused_import_lists_its_problems_and_imports_nothing(client, measured):
    client = logged_in(client, *VIEW, "workers_app.add_referenceset")
    upload = SimpleUploadedFile("bad.csv", b"ID,Risk\nP-404,Attempt\n", content_type="text/csv")

    answer = client.post("/quality/references/", {"file": upload, "name": "bad", "label_columns": "urgency=Risk",
                                                  "map": "urgency:Attempt=LEVEL_4", "kind": "expert"})

    assert answer.status_code == 400
    assert "bad.csv, row 2, field &#x27;id&#x27;: no sample &#x27;P-404&#x27;" in answer.content.decode()
    assert not ReferenceSet.objects.filter(name="bad").exists()


def test_importing_needs_its_permission(client, measured):
    upload = SimpleUploadedFile("x.csv", b"ID,Risk\n", content_type="text/csv")
    answer = logged_in(client, *VIEW).post("/quality/references/", {"file": upload, "name": "x"})
    assert answer.status_code == 403


def test_delete_asks_first_then_deletes(client, measured):
    client = logged_in(client, *VIEW, "workers_app.delete_referenceset")
    page = client.get("/quality/references/").content.decode()
    assert 'action="/quality/references/gold/delete"' in page

    asked = client.post("/quality/references/gold/delete")
    assert asked.status_code == 200 and "Delete reference set gold?" in asked.content.decode()
    assert ReferenceSet.objects.filter(name="gold").exists()

    done = client.post("/quality/references/gold/delete", {"confirmed": "yes"}, follow=True)
    assert "Deleted reference set gold and its 6 label(s)." in done.content.decode()
    assert not ReferenceSet.objects.exists() and not ReferenceLabel.objects.exists()


def test_delete_of_an_unknown_set_is_404_and_needs_its_permission(client, measured):
    assert logged_in(client, *VIEW).post("/quality/references/gold/delete").status_code == 403
    client = logged_in(client, *VIEW, "workers_app.delete_referenceset", name="deleter")
    assert client.post("/quality/references/ghost/delete", {"confirmed": "yes"}).status_code == 404


def test_the_run_comparison_shows_each_runs_accuracy_against_a_chosen_set(client, measured):
    samples, _ = measured
    second = create_run(RunPlan(name="second", annotators=[1], domains=["urgency"]), actor="test")
    for sample in samples:
        store_outcome(second, sample, 1, "urgency", ["LEVEL_4"])
    client = logged_in(client, "workers_app.view_run", "workers_app.compare_runs", "workers_app.view_referenceset")

    page = client.get("/runs/compare/?a=default&b=second&reference=gold").content.decode()

    assert "Accuracy vs gold in default" in page
    assert 'data-accuracy="1">0.833' in page and 'data-accuracy="2">0.333' in page  # 5/6 and 2/6
    unknown = client.get("/runs/compare/?a=default&b=second&reference=ghost")
    assert unknown.status_code == 400 and "no reference set named" in unknown.content.decode()
