"""Real worker processes against a server that refuses structured output: one clear error, not a storm. Three
workers of one annotator, 30 queued posts each, four threads each: the server sees only the requests already in
flight when the first refusal came back, the annotator gets one backend error and the health sweep one alert."""

from __future__ import annotations

import pytest

from audit.models import AuditLog
from tests.fake_llm import Reply
from tests.helpers import make_samples, wait_until
from tests.worker_processes import WorkerProcess
from workers_app.engine.keys import WorkerKey
from workers_app.engine.queues import populate_queues, queue_length
from workers_app.models import Alert, Annotator, Outcome
from workers_app.monitoring.sweep import health_sweep

pytestmark = pytest.mark.django_db(transaction=True)

DOMAINS = ("urgency", "intensity", "adjunct")
THREADS = 4
# How llama-cpp-python 0.3.36 refuses a json_schema response_format (measured): a 500 that names the field.
REFUSAL = ("1 validation error: {'type': 'literal_error', 'loc': ('body', 'response_format', 'type'), 'msg': "
           "\"Input should be 'text' or 'json_object'\"}")


def test_a_refused_structured_parameter_stops_the_annotator_with_one_error_and_one_alert(http_annotator, fake_llm):
    Annotator.objects.filter(number=1).update(structured="json_schema")
    fake_llm.default = Reply(status=500, error=REFUSAL, delay=0.2)
    make_samples(30, vary=True)
    for slug in DOMAINS:
        populate_queues(1, slug)
    workers = [WorkerProcess(WorkerKey(1, slug).queue, threads=THREADS).wait_ready() for slug in DOMAINS]
    try:
        wait_until(lambda: all(queue_length(WorkerKey(1, slug)) == 0 for slug in DOMAINS), timeout=60,
                   what="the queues to drain (blocked samples are dropped, not retried)")
    finally:
        for worker in workers:
            worker.stop()
    assert len(fake_llm.requests) <= len(DOMAINS) * THREADS, f"{len(fake_llm.requests)} requests for 90 posts"
    assert not Outcome.objects.exists()
    error = Annotator.objects.get(number=1).backend_error
    assert error.startswith("the server refuses structured output 'json_schema' (sent as response_format)")
    recorded = [row.detail["recorded"] for row in AuditLog.objects.filter(action="backend_error")]
    assert recorded.count(True) == 1
    health_sweep()
    assert Alert.objects.filter(kind="backend").count() == 1
