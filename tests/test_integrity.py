from __future__ import annotations

import pytest
from django.core.management import call_command

from tests.helpers import make_samples
from workers_app.engine.annotate import annotate_sample
from workers_app.engine.flush import flush_workbook
from workers_app.engine.integrity import verify_integrity, workbook_rows
from workers_app.engine.keys import WorkerKey
from workers_app.engine.queues import sync_checkpoints
from workers_app.redis_client import get_redis
from workers_app.runs.current import current_run
from workers_app.runs.files import workbook_path

pytestmark = pytest.mark.django_db

KEY = WorkerKey(3, "modality")


@pytest.fixture
def annotated(catalogue):
    for sample in make_samples(5):
        annotate_sample(sample, KEY, worker="w")
    flush_workbook(KEY)
    sync_checkpoints(3, "modality")


def report_for(**options):
    [report] = verify_integrity(annotator=3, domain="modality", **options)
    return report


def test_a_consistent_worker_has_no_problems(annotated):
    report = report_for()
    assert (report.problems, report.stored, report.workbook_rows) == ([], 5, 5)


def test_wrong_counters_are_reported_and_rebuilt(annotated):
    get_redis().hset(KEY.progress_key(current_run().pk), "ok", 99)
    report = report_for()
    assert "Redis counters" in report.problems[0] and report.ok
    assert report_for().problems == []


def test_a_stale_workbook_is_reported_and_rewritten(annotated):
    annotate_sample(make_samples(1, text="another post")[0], KEY, worker="w")
    report = report_for()
    assert report.problems == ["workbook has 5 row(s), the store 6"]
    assert workbook_rows(workbook_path(KEY)) == 6


def test_a_corrupted_workbook_fails_with_a_reason_and_is_rewritten(annotated):
    data = bytearray(workbook_path(KEY).read_bytes())
    data[len(data) // 2 : len(data) // 2 + 64] = b"\0" * 64
    workbook_path(KEY).write_bytes(bytes(data))
    report = report_for(repair=False)
    assert report.problems[0].startswith("workbook unreadable:") and not report.ok
    assert report_for().ok and workbook_rows(workbook_path(KEY)) == 5


def test_the_command_prints_json_and_fails_on_an_unrepaired_mismatch(annotated, capsys):
    workbook_path(KEY).unlink()
    with pytest.raises(SystemExit) as exit_status:
        call_command("verify_integrity", "--annotator", "3", "--domain", "modality", "--json", "--no-repair")
    assert exit_status.value.code == 1
    assert '"workbook missing while the store holds 5 row(s)"' in capsys.readouterr().out


def test_an_unknown_domain_is_a_clear_error():
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="no domain 'moodality'"):
        call_command("verify_integrity", "--domain", "moodality")
