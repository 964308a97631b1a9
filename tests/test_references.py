"""Reference sets: imported wide and long, with value maps and several raters, all or nothing, a re-import a no-op;
listed and deleted through the command; the review queue's adjudications kept current as a set of their own; and
carried by archives and state documents."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from django.conf import settings
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from admin_ops.services.archive import create_archive
from admin_ops.services.restore import restore_archive
from admin_ops.services.state import export_state, import_state
from audit.models import AuditLog
from tests.helpers import write_xlsx
from workers_app.importing.service import import_corpus
from workers_app.models import ADJUDICATED_SET, ReferenceLabel, ReferenceSet, ReviewItem, Sample
from workers_app.references.importer import Provenance, delete_reference, import_reference
from workers_app.references.options import Layout, ReferenceRefused, layout_from_texts
from workers_app.review.services import adjudicate_review, claim_review

pytestmark = pytest.mark.django_db

C_SSRS_MAP = {"Supportive": "LEVEL_0", "Indicator": "LEVEL_1", "Ideation": "LEVEL_2", "Behavior": "LEVEL_3",
              "Attempt": "LEVEL_4"}


@pytest.fixture
def posts(catalogue, tmp_path) -> Path:
    path = tmp_path / "posts.csv"
    path.write_text("ID,Text\n" + "".join(f"P-{i},post number {i} about exams and sleep\n" for i in range(1, 7)))
    import_corpus(path, actor="test")
    return path


def labels_of(name: str) -> dict[tuple[str, str, str], list[str]]:
    return {(r.sample.external_id, r.domain.slug, r.rater): r.labels
            for r in ReferenceLabel.objects.filter(reference_set__name=name).select_related("sample", "domain")}


def test_it_imports_a_wide_file_with_a_value_map_and_keeps_the_map_and_provenance(posts, tmp_path):
    path = tmp_path / "experts.csv"
    path.write_text("ID,Risk,Approach\nP-1,Supportive,TA-1\nP-2,Attempt,\"TA-1, TA-5\"\nP-3,Ideation,\n")
    layout, value_map = layout_from_texts(label_columns=["urgency=Risk", "therapeutic=Approach"],
                                          maps=[f"urgency:{v}={c}" for v, c in C_SSRS_MAP.items()])

    report = import_reference(path, name="experts", layout=layout, value_map=value_map, actor="test",
                              provenance=Provenance(kind="expert", source="a study", licence="CC BY 4.0",
                                                    citation="Someone et al. 2019", raters=4))

    assert report.summary() == ("reference set experts: 5 label(s) (urgency 3, therapeutic 2); 1 empty label "
                                "cell(s) skipped.")
    assert labels_of("experts") == {("P-1", "urgency", ""): ["LEVEL_0"], ("P-2", "urgency", ""): ["LEVEL_4"],
                                    ("P-3", "urgency", ""): ["LEVEL_2"], ("P-1", "therapeutic", ""): ["TA-1"],
                                    ("P-2", "therapeutic", ""): ["TA-1", "TA-5"]}
    found = ReferenceSet.objects.get(name="experts")
    assert found.value_map == {"urgency": C_SSRS_MAP}
    assert (found.kind, found.source, found.licence, found.citation, found.raters) == (
        "expert", "a study", "CC BY 4.0", "Someone et al. 2019", 4)
    assert AuditLog.objects.get(action="import_reference", result="ok").detail["labels"] == 5


def test_it_imports_a_long_file_with_several_raters_per_item(posts, tmp_path):
    path = tmp_path / "crowd.jsonl"
    path.write_text("\n".join(json.dumps({"id": f"P-{i}", "domain": "urgency", "label": f"LEVEL_{(i + r) % 5}",
                                          "who": f"r{r}"}) for i in (1, 2) for r in range(3)) + "\n")

    report = import_reference(path, name="crowd", actor="test", provenance=Provenance(kind="crowd"),
                              layout=Layout(domain_column="domain", value_column="label", rater_column="who"))

    assert (report.labels, report.raters) == (6, 3)
    assert labels_of("crowd")[("P-2", "urgency", "r1")] == ["LEVEL_3"]


def test_an_xlsx_sheet_with_numeric_ids_and_labels_reads_as_the_corpus_did(catalogue, tmp_path):
    corpus = write_xlsx(tmp_path / "posts.xlsx", {"S": [("ID", "Text"), (101, "a post"), (102, "another post")]})
    import_corpus(corpus, actor="test")
    labels = write_xlsx(tmp_path / "labels.xlsx", {"Gold": [("ID", "Level"), (101.0, 3), (102, 0)]})

    import_reference(labels, name="numeric", layout=Layout(labels={"urgency": "Level"}), actor="test",
                     value_map={"urgency": {str(n): f"LEVEL_{n}" for n in range(5)}})

    assert labels_of("numeric") == {("101", "urgency", ""): ["LEVEL_3"], ("102", "urgency", ""): ["LEVEL_0"]}


def test_the_same_import_again_changes_nothing_and_says_so(posts, tmp_path):
    path = tmp_path / "gold.csv"
    path.write_text("ID,urgency\nP-1,LEVEL_1\n")
    layout = Layout(labels={"urgency": "urgency"})
    import_reference(path, name="gold", layout=layout, actor="test")

    again = import_reference(path, name="gold", layout=layout, actor="test")

    assert again.already_imported and "the same way; nothing changed" in again.summary()
    assert ReferenceSet.objects.count() == 1 and ReferenceLabel.objects.count() == 1


def test_another_file_under_a_taken_name_is_refused(posts, tmp_path):
    first, second = tmp_path / "a.csv", tmp_path / "b.csv"
    first.write_text("ID,urgency\nP-1,LEVEL_1\n")
    second.write_text("ID,urgency\nP-1,LEVEL_2\n")
    import_reference(first, name="gold", layout=Layout(labels={"urgency": "urgency"}), actor="test")

    with pytest.raises(ReferenceRefused, match="a reference set named 'gold' exists already"):
        import_reference(second, name="gold", layout=Layout(labels={"urgency": "urgency"}), actor="test")
    assert labels_of("gold") == {("P-1", "urgency", ""): ["LEVEL_1"]}


def test_the_command_imports_lists_and_deletes(posts, tmp_path, capsys):
    path = tmp_path / "gold.csv"
    path.write_text("Post,Risk\nP-1,Supportive\nP-2,Attempt\n")
    call_command("reference", "import", str(path), "--name", "gold", "--id-column", "Post", "--label-column",
                 "urgency=Risk", "--map", "urgency:Supportive=LEVEL_0", "--map", "urgency:Attempt=LEVEL_4",
                 "--citation", "Gaur et al., WWW 2019", "--licence", "CC BY 4.0")
    out = capsys.readouterr().out
    assert "reference set gold: 2 label(s) (urgency 2)." in out
    assert "map urgency: Supportive -> LEVEL_0, Attempt -> LEVEL_4" in out

    call_command("reference", "list")
    listed = capsys.readouterr().out
    assert "gold" in listed and "citation: Gaur et al., WWW 2019" in listed and "licence: CC BY 4.0" in listed
    call_command("reference", "list", "--json")
    [record] = json.loads(capsys.readouterr().out)
    assert (record["labels"], record["domains"], record["value_map"]["urgency"]["Attempt"]) == (
        2, {"urgency": 2}, "LEVEL_4")

    with pytest.raises(CommandError, match="deletes its 2 label"):
        call_command("reference", "delete", "gold")
    call_command("reference", "delete", "gold", "--yes")
    assert "deleted reference set gold and its 2 label(s)" in capsys.readouterr().out
    assert not ReferenceSet.objects.exists()
    assert AuditLog.objects.filter(action="delete_reference", result="ok", target="gold").exists()


def test_a_reviewers_adjudication_joins_the_adjudicated_set_at_once(posts, django_user_model):
    reviewer = django_user_model.objects.create_superuser("rae", password="pw-for-tests")
    item = ReviewItem.objects.create(sample=Sample.objects.get(external_id="P-3"), reasons=["level_4"], risk=100)

    claim_review(item, actor_user=reviewer)
    adjudicate_review(item, labels={"urgency": ["LEVEL_3"], "adjunct": ["ADJ-5"]}, note="", actor_user=reviewer)

    found = ReferenceSet.objects.get(name=ADJUDICATED_SET)
    assert (found.kind, found.system) == ("adjudicated", True)
    assert labels_of(ADJUDICATED_SET) == {("P-3", "urgency", ""): ["LEVEL_3"], ("P-3", "adjunct", ""): ["ADJ-5"]}
    with pytest.raises(ReferenceRefused, match="kept by the console itself"):
        delete_reference(found, actor="test")
    with pytest.raises(ReferenceRefused, match="reserved for the review queue"):
        import_reference(posts, name=ADJUDICATED_SET, layout=Layout(labels={"urgency": "Text"}), actor="test")


@pytest.mark.django_db(transaction=True)
def test_an_archive_carries_the_sets_and_their_labels_and_a_restore_brings_them_back(posts, tmp_path,
                                                                                  django_user_model):
    path = tmp_path / "gold.csv"
    path.write_text("ID,Risk\nP-1,Supportive\nP-2,Attempt\n")
    import_reference(path, name="gold", layout=Layout(labels={"urgency": "Risk"}), actor="test",
                     value_map={"urgency": C_SSRS_MAP}, provenance=Provenance(citation="Gaur et al., WWW 2019"))
    reviewer = django_user_model.objects.create_superuser("rae", password="pw-for-tests")
    item = ReviewItem.objects.create(sample=Sample.objects.get(external_id="P-4"), reasons=["level_4"], risk=100)
    claim_review(item, actor_user=reviewer)
    adjudicate_review(item, labels={"urgency": ["LEVEL_2"]}, note="", actor_user=reviewer)
    archive = create_archive("with-references", actor="test")
    assert archive.counts["references"] == 1 and archive.counts["reference_labels"] == 2
    ReferenceSet.objects.all().delete()
    ReviewItem.objects.all().delete()

    plan = restore_archive(settings.ARCHIVES_DIR / archive.file_name, actor="test")

    assert plan.references == ["gold"] and plan.reference_labels == 2
    found = ReferenceSet.objects.get(name="gold")
    assert (found.citation, found.value_map) == ("Gaur et al., WWW 2019", {"urgency": C_SSRS_MAP})
    assert labels_of("gold") == {("P-1", "urgency", ""): ["LEVEL_0"], ("P-2", "urgency", ""): ["LEVEL_4"]}
    assert labels_of(ADJUDICATED_SET) == {("P-4", "urgency", ""): ["LEVEL_2"]}  # derived from the review lines


def test_a_state_document_carries_provenance_and_updates_it_on_the_same_set(posts, tmp_path):
    path = tmp_path / "gold.csv"
    path.write_text("ID,urgency\nP-1,LEVEL_1\n")
    import_reference(path, name="gold", layout=Layout(labels={"urgency": "urgency"}), actor="test",
                     provenance=Provenance(citation="old citation"))
    document = json.loads(export_state(actor="test", target="state.json"))
    assert document["version"] >= 3  # reference sets came with version 3
    [record] = document["references"]
    assert (record["name"], record["citation"], record["labels"]) == ("gold", "old citation", 1)

    record["citation"] = "Gaur et al., WWW 2019"
    document["references"].append({**record, "name": "elsewhere"})
    plan = import_state(json.dumps(document), source="state.json", actor="test")

    assert "reference set gold.citation: 'old citation' -> 'Gaur et al., WWW 2019'" in plan.changes
    assert any(change.startswith("reference set elsewhere: not in this console") for change in plan.changes)
    assert ReferenceSet.objects.get(name="gold").citation == "Gaur et al., WWW 2019"
    assert not ReferenceSet.objects.filter(name="elsewhere").exists()


@pytest.mark.django_db(transaction=True)
def test_adjudications_recorded_before_reference_sets_become_the_adjudicated_set(catalogue):
    executor = MigrationExecutor(connection)
    latest = executor.loader.graph.leaf_nodes()
    try:
        old = MigrationExecutor(connection).migrate([("workers_app", "0016_reference_sets")]).apps
        corpus = old.get_model("workers_app", "Corpus").objects.create(file_name="old.csv", sha256="x",
                                                                       imported_by="test")
        samples = [old.get_model("workers_app", "Sample").objects.create(external_id=f"OLD-{n}", text="t",
                                                                         corpus=corpus, source_row=n)
                   for n in range(2)]
        items = old.get_model("workers_app", "ReviewItem").objects
        items.create(sample=samples[0], status="reviewed", adjudicated={"urgency": ["LEVEL_3"]})
        items.create(sample=samples[1], status="open")
    finally:
        MigrationExecutor(connection).migrate(latest)

    assert labels_of(ADJUDICATED_SET) == {("OLD-0", "urgency", ""): ["LEVEL_3"]}
    assert ReferenceSet.objects.get(name=ADJUDICATED_SET).system
