"""Real Celery worker processes, real Redis: kills and wipes lose nothing and duplicate nothing."""

from __future__ import annotations

import time

import openpyxl
import pytest
from django.db.models import Count

from tests.helpers import make_samples
from tests.worker_processes import WorkerProcess
from workers_app.engine.flush import flush_workbook
from workers_app.engine.keys import WorkerKey
from workers_app.engine.queues import populate_queues, progress, sync_checkpoints
from workers_app.models import Annotator, Outcome
from workers_app.redis_client import get_redis
from workers_app.runs.files import workbook_path

pytestmark = pytest.mark.django_db(transaction=True)

KEY = WorkerKey(2, "urgency")


def stored() -> int:
    return Outcome.objects.filter(annotator__number=KEY.annotator, domain__slug=KEY.domain).count()


def wait_for_stored(count: int, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while stored() < count:
        assert time.monotonic() < deadline, f"only {stored()} of {count} stored in {timeout} s"
        time.sleep(0.1)


def assert_each_sample_stored_once(total: int) -> None:
    per_sample = Outcome.objects.filter(annotator__number=2, domain__slug="urgency").values("sample_id").annotate(
        n=Count("id"))
    assert len(per_sample) == total and {row["n"] for row in per_sample} == {1}


def workbook_data_rows() -> int:
    book = openpyxl.load_workbook(workbook_path(KEY), read_only=True)
    try:
        return book.active.max_row - 1
    finally:
        book.close()


@pytest.fixture
def slow_builtin(catalogue):
    Annotator.objects.filter(number=2).update(builtin_latency_ms=20)


def test_a_worker_killed_mid_run_and_restarted_stores_every_outcome_exactly_once(slow_builtin):
    make_samples(200)
    assert populate_queues(2, "urgency") == {str(KEY): 200}
    worker = WorkerProcess(KEY.queue).wait_ready()
    try:
        wait_for_stored(60)
        worker.kill()
        assert stored() < 200
        worker = WorkerProcess(KEY.queue).wait_ready()
        sync_checkpoints(2, "urgency")
        populate_queues(2, "urgency")
        wait_for_stored(200)
    finally:
        assert worker.stop() == 0
    assert_each_sample_stored_once(200)
    assert workbook_data_rows() == 200


def test_a_redis_wipe_mid_run_is_rebuilt_from_the_store_without_duplicates(slow_builtin):
    make_samples(200)
    populate_queues(2, "urgency")
    worker = WorkerProcess(KEY.queue).wait_ready()
    try:
        wait_for_stored(50)
        get_redis().flushdb()
        sync_checkpoints(2, "urgency")
        populate_queues(2, "urgency")
        wait_for_stored(200)
    finally:
        worker.stop()
    assert_each_sample_stored_once(200)
    sync_checkpoints(2, "urgency")
    assert sum(progress(KEY).values()) == 200


def test_a_graceful_stop_flushes_the_workbook_before_exit(catalogue):
    make_samples(30)
    populate_queues(2, "urgency")
    worker = WorkerProcess(KEY.queue, FLUSH_EVERY_ROWS="100000", FLUSH_EVERY_SECONDS="3600").wait_ready()
    wait_for_stored(30)
    assert worker.stop() == 0
    assert workbook_data_rows() == 30


def test_populating_twice_queues_nothing_new(catalogue):
    make_samples(25)
    assert populate_queues(2, "urgency") == {str(KEY): 25}
    assert populate_queues(2, "urgency") == {str(KEY): 0}
    assert sync_checkpoints(2, "urgency")[str(KEY)]["queued"] == 25


def test_a_wiped_redis_gives_the_same_numbers_after_a_sync(catalogue):
    from workers_app.engine.annotate import annotate_sample

    samples = make_samples(12)
    for sample in samples[:9]:
        annotate_sample(sample, KEY, worker="w")
    populate_queues(2, "urgency")
    before = sync_checkpoints(2, "urgency")
    get_redis().flushdb()
    assert sync_checkpoints(2, "urgency") == {str(KEY): {**before[str(KEY)], "queued": 0}}
    assert populate_queues(2, "urgency") == {str(KEY): 3}


def test_a_formula_like_post_comes_out_of_the_workbook_as_text(catalogue):
    from workers_app.engine.annotate import annotate_sample

    [sample] = make_samples(1, text='=HYPERLINK("http://x","y")')
    annotate_sample(sample, KEY, worker="w")
    flush_workbook(KEY)
    book = openpyxl.load_workbook(workbook_path(KEY))
    cell = book.active["B2"]
    assert (cell.value, cell.data_type) == ('=HYPERLINK("http://x","y")', "s")


def test_a_backend_outage_longer_than_the_retries_is_requeued_and_the_run_completes(http_annotator, fake_llm):
    from tests.fake_llm import Reply

    http_key = WorkerKey(1, "urgency")
    Annotator.objects.filter(number=1).update(max_retries=1)
    fake_llm.default = Reply(content="<<LEVEL_2>>")
    fake_llm.script.extend([Reply(status=503)] * 12)
    make_samples(10)
    populate_queues(1, "urgency")
    worker = WorkerProcess(http_key.queue).wait_ready()
    try:
        deadline = time.monotonic() + 60
        while Outcome.objects.filter(annotator__number=1).count() < 10:
            assert time.monotonic() < deadline, "the run did not complete after the outage"
            time.sleep(0.2)
    finally:
        worker.stop()
    assert "retry" in worker.log.read_text().lower()
    assert Outcome.objects.filter(annotator__number=1, status="ok").values("sample_id").distinct().count() == 10
