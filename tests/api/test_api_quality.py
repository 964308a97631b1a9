"""Reference sets and quality through the API: the same services and row-level errors as the command and the pages,
the same permissions as the roles give."""

from __future__ import annotations

import openpyxl
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from api.tasks import consolidate_task, job_workbook
from audit.models import AuditLog
from tests.helpers import make_samples, store_outcome
from workers_app.models import ReferenceSet, Sample
from workers_app.runs.current import current_run

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def posts(roles) -> list[str]:
    samples = make_samples(4, vary=True)
    for index, sample in enumerate(samples):
        store_outcome(current_run(), sample, 1, "urgency", ["LEVEL_1" if index else "LEVEL_4"])
    return list(Sample.objects.filter(pk__in=samples).order_by("pk").values_list("external_id", flat=True))


def upload(client, content: str, **fields):
    return client.post("/api/v1/references", {"file": SimpleUploadedFile("gold.csv", content.encode()),
                                              "name": "gold", **fields})


def good(posts: list[str]) -> str:
    return "ID,Risk\n" + "".join(f"{external_id},Indicator\n" for external_id in posts)


def test_an_operator_imports_a_set_and_a_viewer_reads_it_and_the_quality(as_operator, as_viewer, posts):
    response = upload(as_operator, good(posts), label_columns="urgency=Risk", map="urgency:Indicator=LEVEL_1",
                      citation="Gaur et al., WWW 2019", licence="CC BY 4.0", kind="expert", raters="4")
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["summary"] == "reference set gold: 4 label(s) (urgency 4)."
    assert body["reference"]["value_map"] == {"urgency": {"Indicator": "LEVEL_1"}}
    assert AuditLog.objects.get(action="import_reference").actor == "operator (token ops-script)"
    again = upload(as_operator, good(posts), label_columns="urgency=Risk", map="urgency:Indicator=LEVEL_1",
                   citation="Gaur et al., WWW 2019", licence="CC BY 4.0", kind="expert", raters="4")
    assert again.status_code == 200 and again.json()["already_imported"] is True

    [listed] = as_viewer.get("/api/v1/references").json()
    assert (listed["name"], listed["labels"], listed["raters_stated"], listed["citation"]) == (
        "gold", 4, 4, "Gaur et al., WWW 2019")
    quality = as_viewer.get("/api/v1/quality?reference=gold")
    assert quality.status_code == 200, quality.content
    [urgency] = quality.json()["domains"]
    [row] = urgency["rows"]  # one annotator: no consensus rows
    assert (row["name"], row["n"], row["accuracy"]["value"]) == ("annotator 1", 4, 0.75)
    assert quality.json()["reference"]["citation"] == "Gaur et al., WWW 2019"


def test_a_bad_file_is_422_with_each_problem_and_nothing_imported(as_operator, posts, unchanged):
    response = upload(as_operator, "ID,Risk\nP-404,Indicator\n" + good(posts).split("\n", 1)[1] + "P-1-0,Maybe\n",
                      label_columns="urgency=Risk", map="urgency:Indicator=LEVEL_1")
    assert response.status_code == 422
    body = response.json()
    assert body["error"] == "invalid_file"
    assert body["problems"][0] == ("gold.csv, row 2, field 'id': no sample 'P-404': import the posts as a corpus "
                                   "first (the ids must be those the corpus import read)")
    assert any("'Maybe' maps to no code of urgency" in problem for problem in body["problems"])
    assert not ReferenceSet.objects.exists()
    unchanged()


@pytest.mark.parametrize(("fields", "field"), [({"name": "Not A Name"}, "name"), ({"kind": "oracle"}, "kind"),
                                               ({"raters": "0"}, "raters"), ({"file": "text"}, "file")])
def test_a_bad_form_is_422_naming_the_field(as_operator, posts, unchanged, fields, field):
    response = as_operator.post("/api/v1/references", {"file": SimpleUploadedFile("gold.csv", b"ID,Risk\n"),
                                                       "name": "gold", "label_columns": "urgency=Risk", **fields})
    assert response.status_code == 422 and response.json()["error"] == f"invalid_{field}", response.content
    unchanged()


def test_permissions_follow_the_roles(as_viewer, as_operator, posts, unchanged):
    refused = upload(as_viewer, good(posts), label_columns="urgency=Risk")
    assert refused.status_code == 403 and "workers_app.add_referenceset" in refused.json()["detail"]
    assert as_viewer.delete("/api/v1/references/gold").status_code == 403
    unchanged()


def test_quality_names_an_unknown_run_or_set(as_viewer, posts):
    assert as_viewer.get("/api/v1/quality?reference=ghost").json()["error"] == "unknown_reference"
    assert as_viewer.get("/api/v1/quality?reference=ghost&run=nope").status_code == 404
    assert as_viewer.get("/api/v1/quality").json()["error"] == "invalid_reference"
    assert as_viewer.get("/api/v1/quality?reference=../x").status_code == 422


def test_an_operator_deletes_a_set_but_not_the_adjudicated_one(as_operator, posts):
    upload(as_operator, good(posts), label_columns="urgency=Risk", map="urgency:Indicator=LEVEL_1")
    assert as_operator.delete("/api/v1/references/gold").status_code == 204
    assert not ReferenceSet.objects.filter(name="gold").exists()
    assert as_operator.delete("/api/v1/references/gold").status_code == 404
    ReferenceSet.objects.create(name="adjudicated", kind="adjudicated", system=True, created_by="system")
    kept = as_operator.delete("/api/v1/references/adjudicated")
    assert kept.status_code == 409 and "kept by the console itself" in kept.json()["detail"]


def test_a_consolidation_job_takes_the_reference_set_for_its_quality_sheet(as_operator, posts):
    upload(as_operator, good(posts), label_columns="urgency=Risk", map="urgency:Indicator=LEVEL_1")
    unknown = as_operator.post("/api/v1/consolidations?reference=ghost")
    assert unknown.status_code == 404 and unknown.json()["error"] == "unknown_reference"

    result = consolidate_task.apply(args=("operator", "default", "gold"))  # what the control worker runs

    path = job_workbook(result.id, "default")
    assert result.get()["file"] == path.name
    assert "Quality" in openpyxl.load_workbook(path, read_only=True).sheetnames
