"""Hostile reference files and options: each is refused with an error naming the file, row and field (or the option),
changes nothing, and leaves a failed audit row when it reached the service; through the service, the command, the
workspace's form and the API alike."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from tests.helpers import write_xlsx
from tests.hostile.conftest import assert_failed_audit
from workers_app.importing.service import import_corpus
from workers_app.references.importer import Provenance, import_reference
from workers_app.references.options import Layout, ReferenceRefused, layout_from_texts

pytestmark = pytest.mark.django_db(transaction=True)

WIDE = Layout(labels={"urgency": "Risk"})
LONG = Layout(domain_column="domain", value_column="label")
MAP = {"urgency": {"Supportive": "LEVEL_0", "Attempt": "LEVEL_4"}}


@pytest.fixture
def posts(catalogue, tmp_path):
    path = tmp_path / "posts.csv"
    path.write_text("ID,Text\n" + "".join(f"P-{i},post {i}\n" for i in range(1, 5)))
    import_corpus(path, actor="test")


def text(content: str) -> Callable[[Path], None]:
    return lambda path: path.write_text(content, encoding="utf-8")


def raw(content: bytes) -> Callable[[Path], None]:
    return lambda path: path.write_bytes(content)


# name -> (file name, how to write it, layout, value map, provenance, what the refusal must say)
CASES: dict[str, tuple] = {
    "an unknown sample id": ("gold.csv", text("ID,Risk\nP-1,Attempt\nP-99,Supportive\n"), WIDE, MAP, {},
                             "gold.csv, row 3, field 'id': no sample 'P-99': import the posts as a corpus first"),
    "a label the map does not know": ("gold.csv", text("ID,Risk\nP-1,Attempt\nP-2,Ideation\n"), WIDE, MAP, {},
                                      "gold.csv, row 3, field 'Risk': 'Ideation' maps to no code of urgency"),
    "a label that is no code, without a map": ("gold.csv", text("ID,Risk\nP-1,LEVEL_9\n"), WIDE, {}, {},
                                               ("'LEVEL_9' maps to no code of urgency (LEVEL_0, LEVEL_1, LEVEL_2, "
                                               "LEVEL_3, LEVEL_4); add --map urgency:VALUE=CODE")),
    "a sample labelled twice without a rater column": (
        "gold.csv", text("ID,Risk\nP-1,Attempt\nP-1,Supportive\n"), WIDE, MAP, {},
        ("row 3, field 'id': sample 'P-1', domain urgency is labelled twice (first at row 2) (several raters per "
        "item? name the column that tells them apart with --rater-column)")),
    "one rater labelling an item twice": (
        "gold.csv", text("ID,Risk,Who\nP-1,Attempt,ann\nP-1,Supportive,ann\n"),
        Layout(labels={"urgency": "Risk"}, rater_column="Who"), MAP, {},
        "sample 'P-1', domain urgency, rater 'ann' is labelled twice (first at row 2)"),
    "an empty rater": ("gold.csv", text("ID,Risk,Who\nP-1,Attempt,\n"),
                       Layout(labels={"urgency": "Risk"}, rater_column="Who"), MAP, {},
                       "row 2, field 'rater': empty rater"),
    "a rater column the file lacks": ("gold.csv", text("ID,Risk\nP-1,Attempt\n"),
                                      Layout(labels={"urgency": "Risk"}, rater_column="Who"), MAP, {},
                                      ("no rater column 'Who'; the columns are: 'ID', 'Risk'. Choose one with "
                                      "--rater-column")),
    "a label column the file lacks": ("gold.csv", text("ID,Level\nP-1,Attempt\n"), WIDE, MAP, {},
                                      "no label:urgency column 'Risk'; the columns are: 'ID', 'Level'"),
    "no id column": ("gold.csv", text("Who,Risk\nP-1,Attempt\n"), WIDE, MAP, {}, "no id column (looked for id"),
    "an unknown domain": ("gold.csv", text("ID,Risk\nP-1,Attempt\n"), Layout(labels={"urgncy": "Risk"}), {}, {},
                          "--label-column urgncy: no domain 'urgncy'; the domains are urgency"),
    "a free-text domain": ("gold.csv", text("ID,Issues\nP-1,sleep\n"), Layout(labels={"redressal": "Issues"}), {}, {},
                           "--label-column redressal: redressal holds free text, which has no codes to compare with"),
    "a map to a code the domain lacks": ("gold.csv", text("ID,Risk\nP-1,Attempt\n"), WIDE,
                                         {"urgency": {"Attempt": "LEVEL_5"}}, {},
                                         "--map urgency:Attempt=LEVEL_5: 'LEVEL_5' is not a code of urgency"),
    "a map of a domain the file does not hold": ("gold.csv", text("ID,Risk\nP-1,Attempt\n"), WIDE,
                                                 {**MAP, "intensity": {"x": "INT-1"}}, {},
                                                 ("--map intensity: the file's domains are urgency; intensity has no "
                                                 "--label-column")),
    "a long-form row of an unknown domain": ("gold.csv", text("ID,domain,label\nP-1,urgency,LEVEL_1\nP-2,mood,low\n"),
                                             LONG, {}, {}, "row 3, field 'domain': no domain 'mood'"),
    "two codes in a one-code domain": ("gold.csv", text('ID,Risk\nP-1,"LEVEL_1, LEVEL_2"\n'), WIDE, {}, {},
                                       "'LEVEL_1, LEVEL_2' maps to no code of urgency"),
    "NONE with codes in a code set": ("gold.csv", text('ID,Adj\nP-1,"NONE, ADJ-1"\n'),
                                      Layout(labels={"adjunct": "Adj"}), {}, {}, "'NONE, ADJ-1': NONE stands alone"),
    "a true/false label": ("gold.jsonl", text(json.dumps({"id": "P-1", "domain": "urgency", "label": True}) + "\n"),
                           LONG, {}, {}, "line 1, field 'label': a true/false value (True) where a label must be"),
    "a control character in a rater": ("gold.csv", text("ID,Risk,Who\nP-1,Attempt,a\x07b\n"),
                                       Layout(labels={"urgency": "Risk"}, rater_column="Who"), MAP, {},
                                       "field 'rater': control character U+0007"),
    "only empty labels": ("gold.csv", text("ID,Risk\nP-1,\nP-2,\n"), WIDE, MAP, {},
                          "no labels: every label cell is empty"),
    "an empty file": ("gold.csv", raw(b""), WIDE, MAP, {}, "the file is empty (0 bytes)"),
    "a file that is not UTF-8": ("gold.csv", raw("ID,Risk\nP-1,Attempt\xe9\n".encode("latin-1")), WIDE, MAP, {},
                                 "not UTF-8 text"),
    "an unterminated quote": ("gold.csv", text('ID,Risk\nP-1,"Attempt\n'), WIDE, MAP, {},
                              "a quoted field is never closed"),
    "a spreadsheet that is no workbook": ("gold.xlsx", text("ID,Risk\n"), WIDE, MAP, {}, "not an xlsx workbook"),
    "a sheet the workbook lacks": ("gold.xlsx", lambda path: write_xlsx(path, {"S": [("ID", "Risk"), ("P-1", "Attempt")]}),
                                   Layout(labels={"urgency": "Risk"}, sheets=("Gold",)), MAP, {}, "no sheet 'Gold'"),
    "both the wide and the long form": ("gold.csv", text("ID,Risk\nP-1,Attempt\n"),
                                        Layout(labels={"urgency": "Risk"}, domain_column="domain"), MAP, {},
                                        "is the wide form, --domain-column the long form: give one"),
    "one column for two fields": ("gold.csv", text("ID,Risk\nP-1,Attempt\n"),
                                  Layout(labels={"urgency": "Risk", "intensity": "Risk"}), {}, {},
                                  "the column 'risk' is named for two fields"),
    "a name that is not a name": ("gold.csv", text("ID,Risk\nP-1,Attempt\n"), WIDE, MAP, {"name": "../Gold"},
                                  "--name: 1-40 lower-case letters"),
    "a rater count of nought": ("gold.csv", text("ID,Risk\nP-1,Attempt\n"), WIDE, MAP, {"raters": 0},
                                "--raters: Ensure this value is greater than or equal to 1."),
    "an unknown kind": ("gold.csv", text("ID,Risk\nP-1,Attempt\n"), WIDE, MAP, {"kind": "oracle"},
                        "--kind: Value 'oracle' is not a valid choice."),
    "a control character in the citation": ("gold.csv", text("ID,Risk\nP-1,Attempt\n"), WIDE, MAP,
                                            {"citation": "Gaur\x00"}, "--citation: Control characters are not allowed"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_it_refuses_a_hostile_reference_import_and_changes_nothing(posts, tmp_path, unchanged, case):
    file_name, write, layout, value_map, options, message = CASES[case]
    path = tmp_path / file_name
    write(path)
    name = options.get("name", "gold")
    provenance = Provenance(**{k: v for k, v in options.items() if k != "name"})

    with pytest.raises(ReferenceRefused) as refused:
        import_reference(path, name=name, layout=layout, value_map=value_map, provenance=provenance, actor="test")

    assert any(message in problem for problem in refused.value.problems), refused.value.problems
    unchanged()
    assert_failed_audit("import_reference")


def test_every_bad_row_is_named_not_only_the_first(posts, tmp_path, unchanged):
    path = tmp_path / "gold.csv"
    path.write_text("ID,Risk\nP-1,Attempt\nP-77,Attempt\nP-2,Sometimes\nP-3,Supportive\nP-3,Attempt\n")

    with pytest.raises(ReferenceRefused) as refused:
        import_reference(path, name="gold", layout=WIDE, value_map=MAP, actor="test")

    assert [p.split(": ", 1)[0] for p in refused.value.problems] == [
        "gold.csv, row 3, field 'id'", "gold.csv, row 4, field 'Risk'", "gold.csv, row 6, field 'id'"]
    unchanged()


def test_a_file_over_the_size_limit_is_refused_before_it_is_read(posts, tmp_path, unchanged, settings):
    settings.IMPORT_MAX_BYTES = 1000
    path = tmp_path / "huge.csv"
    path.write_text("ID,Risk\n" + "P-1,Attempt\n" * 200)

    with pytest.raises(ReferenceRefused, match="the file is 2,408 bytes; the limit is 1,000 bytes"):
        import_reference(path, name="gold", layout=WIDE, value_map=MAP, actor="test")
    unchanged()


def test_a_file_over_the_row_limit_is_refused(posts, tmp_path, unchanged, settings):
    settings.IMPORT_MAX_ROWS = 50
    path = tmp_path / "long.csv"
    path.write_text("ID,domain,label,who\n" + "".join(f"P-1,urgency,LEVEL_1,r{i}\n" for i in range(60)))

    with pytest.raises(ReferenceRefused, match="row 52: more than 50 data rows"):
        import_reference(path, name="gold", layout=Layout(domain_column="domain", value_column="label",
                                                          rater_column="who"), actor="test")
    unchanged()


OPTION_CASES = {
    "a label column without a domain": (["--label-column", "Risk"], "--label-column 'Risk': give DOMAIN=COLUMN"),
    "a map without a code": (["--label-column", "urgency=Risk", "--map", "urgency:Attempt"],
                             "--map 'urgency:Attempt': give DOMAIN:VALUE=CODE"),
    "a value mapped two ways": (["--label-column", "urgency=Risk", "--map", "urgency:Attempt=LEVEL_4", "--map",
                                 "urgency:Attempt=LEVEL_3"], "value 'Attempt' maps to LEVEL_4 and to LEVEL_3"),
    "a domain given twice": (["--label-column", "urgency=Risk", "--label-column", "urgency=Other"],
                             "--label-column: domain 'urgency' is given twice"),
    "no label columns at all": ([], "give --label-column DOMAIN=COLUMN for each domain the file holds"),
}


@pytest.mark.parametrize("case", list(OPTION_CASES))
def test_the_command_refuses_bad_options_and_changes_nothing(posts, tmp_path, unchanged, case):
    arguments, message = OPTION_CASES[case]
    path = tmp_path / "gold.csv"
    path.write_text("ID,Risk\nP-1,Attempt\n")

    with pytest.raises(CommandError) as refused:
        call_command("reference", "import", str(path), "--name", "gold", *arguments)

    assert message in str(refused.value)
    unchanged()


def test_the_command_names_the_problems_and_imports_nothing(posts, tmp_path, unchanged):
    path = tmp_path / "gold.csv"
    path.write_text("ID,Risk\nP-1,Attempt\nP-99,Attempt\n")

    with pytest.raises(CommandError, match=r"1 problem\(s\); nothing was imported:\n  - gold.csv, row 3, field 'id': "
                                           "no sample 'P-99'"):
        call_command("reference", "import", str(path), "--name", "gold", "--label-column", "urgency=Risk",
                     "--map", "urgency:Attempt=LEVEL_4")
    unchanged()


def test_deleting_an_unknown_set_names_those_there_are(posts, unchanged):
    with pytest.raises(CommandError, match="no reference set named 'ghost'; the sets are none"):
        call_command("reference", "delete", "ghost", "--yes")
    unchanged()


def test_options_typed_in_one_text_field_are_parsed_per_line():
    layout, value_map = layout_from_texts(label_columns=["urgency=Risk\n\nadjunct=Adj"],
                                          maps=["urgency:Supportive=LEVEL_0\r\nurgency:a:b=c=LEVEL_1"])
    assert layout.labels == {"urgency": "Risk", "adjunct": "Adj"}
    assert value_map == {"urgency": {"Supportive": "LEVEL_0", "a:b=c": "LEVEL_1"}}
