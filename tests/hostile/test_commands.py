"""Hostile command arguments: each is a CommandError naming the argument and the reason, never a traceback, and
nothing runs: no change, no audit row."""

from __future__ import annotations

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from audit.models import AuditLog
from workers_app.fleet.rows import ensure_worker_rows

pytestmark = pytest.mark.django_db


@pytest.fixture
def fleet(catalogue) -> None:
    ensure_worker_rows()  # before the fingerprint: a valid scope would create the rows


@pytest.fixture
def files(tmp_path) -> dict[str, str]:
    binary = tmp_path / "state.json"
    binary.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR")
    return {"folder": str(tmp_path), "missing": str(tmp_path / "missing" / "out.xlsx"), "binary": str(binary),
            "csv": str(tmp_path / "out.csv")}


CASES = {
    "a superscript worker number": (["workers", "pause", "--worker", "²:urgency"],
                                    "argument --worker: --worker takes N:DOMAIN, e.g. 2:urgency (got '²:urgency')"),
    "worker number 0": (["workers", "pause", "--worker", "0:urgency"],
                        "argument --worker: annotator 0: Ensure this value is greater than or equal to 1."),
    "a worker without a domain": (["workers", "pause", "--worker", "2:"], "argument --worker: --worker takes N:DOMAIN"),
    "annotator -1": (["workers", "pause", "--annotator", "-1"],
                     "argument --annotator: expected an annotator number such as 2, got '-1'"),
    "a 20-digit annotator": (["workers", "pause", "--annotator", "99999999999999999999"],
                             "argument --annotator: expected an annotator number such as 2"),
    "annotator 100": (["workers", "pause", "--annotator", "100"],
                      "argument --annotator: annotator 100: Ensure this value is less than or equal to 99."),
    "Arabic-Indic digits": (["populate_queues", "--annotator", "٣"],
                            "argument --annotator: expected an annotator number such as 2, got '٣'"),
    "an unknown domain": (["workers", "pause", "--domain", "../urgency"], "no domain '../urgency'; the domains are"),
    "an unknown domain to flush": (["flush_workbooks", "--domain", "nope"], "no domain 'nope'"),
    "an archive name that climbs out": (["archive", "../x"], "archive name '../x': use 1-100 letters"),
    "verifying a file that does not exist": (["verify_archive", "/nonexistent"],
                                             "argument path: /nonexistent: no such file"),
    "restoring a folder": (["restore_archive", "{folder}"], "argument path: {folder}: not a file"),
    "consolidating into a missing folder": (["consolidate", "{missing}"],
                                            "argument path: {missing}: the folder {folder}/missing does not exist"),
    "consolidating to a .csv name": (["consolidate", "{csv}"], "argument path: {csv}: give a file name ending in .xlsx"),
    "exporting the state to a folder": (["export_state", "{folder}"],
                                        "argument path: {folder}: is a folder; give a file name"),
    "exporting malformed answers to a folder": (["export_malformed", "{folder}"],
                                                "argument path: {folder}: is a folder"),
    "importing a binary file": (["import_state", "{binary}"], "path: state.json: not UTF-8 text (byte 0)"),
    "importing a folder": (["import_state", "{folder}"], "argument path: {folder}: not a file"),
    "resetting annotator 0": (["reset", "--annotator", "0", "--yes"],
                              "argument --annotator: annotator 0: Ensure this value is greater than or equal to 1."),
}


@pytest.mark.parametrize("case", list(CASES))
def test_it_refuses_a_hostile_argument(fleet, files, unchanged, case):
    arguments, message = CASES[case]
    audit_rows = AuditLog.objects.count()

    with pytest.raises(CommandError) as refused:
        call_command(*[argument.format(**files) for argument in arguments])

    assert message.format(**files) in str(refused.value)
    unchanged()
    assert AuditLog.objects.count() == audit_rows
