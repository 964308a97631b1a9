"""End to end against a real, independent OpenAI-compatible server: llama.cpp with Gemma 3 270M, offline.

The packages are installed by ./test.sh (requirements-local-llm.txt), so this runs on CI; it is not skipped. The
structured-output tests pin what the bundled llama-cpp-python server (0.3.36) takes: a GBNF grammar in both modes,
``response_format`` json_object with a schema in chat mode; it refuses json_schema (a 500 naming the field) and
ignores every response_format in completion mode.
"""

from __future__ import annotations

import time

import httpx
import openpyxl
import pytest
from django.conf import settings
from django.core.management import call_command

from annotation_site.local_llm import start_server
from annotation_site.redis_service import free_port
from tests.helpers import SHARED_DATASETS
from tests.worker_processes import WorkerProcess
from workers_app.engine.annotate import annotate_samples
from workers_app.engine.keys import WorkerKey
from workers_app.engine.queues import populate_queues
from workers_app.local_profile import use_local_gemma
from workers_app.models import Annotator, Outcome, Sample
from workers_app.runs.files import workbook_path

pytestmark = pytest.mark.django_db(transaction=True)


POSTS = 4  # ~2.7 s a request on 2 cores: enough real posts to see the model answer, parse and retry


@pytest.fixture
def real_posts(catalogue):
    source = SHARED_DATASETS / "mh_posts_1871.xlsx"
    call_command("import_corpus", str(source if source.exists() else settings.DEMO_CORPUS))
    keep = Sample.objects.order_by("pk").values_list("pk", flat=True)[:POSTS]
    Sample.objects.exclude(pk__in=list(keep)).delete()


@pytest.fixture
def llama_server():
    port = free_port()
    process = start_server(port, settings.DATA_DIR / "llama.log")
    yield port, process
    process.kill()
    process.wait()


def local_annotator(port: int, **changes) -> Annotator:
    annotator = Annotator.objects.get(number=1)
    use_local_gemma(annotator, actor="test")
    Annotator.objects.filter(number=1).update(base_url=f"http://127.0.0.1:{port}/v1", **changes)
    return Annotator.objects.get(number=1)


def wait_for_outcomes(count: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while Outcome.objects.count() < count:
        assert time.monotonic() < deadline, f"{Outcome.objects.count()} of {count} outcomes after {timeout} s"
        time.sleep(0.5)


def test_real_posts_in_two_domains_go_through_real_workers_in_completion_mode(real_posts, llama_server):
    port, _ = llama_server
    local_annotator(port)
    workers = [WorkerProcess("annotator_1_urgency").wait_ready(), WorkerProcess("annotator_1_intensity").wait_ready()]
    try:
        populate_queues(1, "urgency")
        populate_queues(1, "intensity")
        wait_for_outcomes(2 * POSTS, timeout=300)
    finally:
        for worker in workers:
            worker.stop()
    outcomes = list(Outcome.objects.all())
    assert all(o.status == "ok" or o.reason for o in outcomes)
    assert all(o.latency_ms > 0 and o.prompt_tokens and o.completion_tokens for o in outcomes)
    assert sum(o.status == "ok" for o in outcomes) >= POSTS  # the few-shot prompt makes most answers well-formed
    for name in ("annotator_1_urgency", "annotator_1_intensity"):
        book = openpyxl.load_workbook(workbook_path(WorkerKey.parse(name)), read_only=True)
        assert book.active.max_row == POSTS + 1
        book.close()


def test_chat_mode_against_a_base_model_stores_malformed_outcomes_with_reasons(real_posts, llama_server):
    port, _ = llama_server
    local_annotator(port, request_mode="chat", structured="none", max_retries=0, max_tokens=48)
    Sample.objects.filter(pk__in=list(Sample.objects.values_list("pk", flat=True)[2:])).delete()
    worker = WorkerProcess("annotator_1_urgency").wait_ready()
    try:
        populate_queues(1, "urgency")
        wait_for_outcomes(2, timeout=180)
    finally:
        worker.stop()
    assert all(o.status == "ok" or o.reason for o in Outcome.objects.all())


def test_a_server_killed_mid_run_causes_retries_and_the_run_completes_after_it_restarts(real_posts, llama_server):
    port, process = llama_server
    local_annotator(port, max_retries=2)
    worker = WorkerProcess("annotator_1_urgency").wait_ready()
    try:
        populate_queues(1, "urgency")
        wait_for_outcomes(2, timeout=120)
        process.kill()
        process.wait()
        time.sleep(3)
        restarted = start_server(port, settings.DATA_DIR / "llama.log")
        try:
            wait_for_outcomes(POSTS, timeout=300)
        finally:
            restarted.kill()
            restarted.wait()
    finally:
        worker.stop()
    assert Outcome.objects.count() == POSTS
    assert "retry" in worker.log.read_text().lower() or Outcome.objects.filter(attempts__gt=1).exists()


def _annotate_in_process(domains: tuple[str, ...], count: int) -> None:
    samples = list(Sample.objects.order_by("pk").values_list("pk", flat=True)[:count])
    for slug in domains:
        annotate_samples(samples, WorkerKey(1, slug), worker="test")


def test_the_grammar_leaves_no_malformed_answer_in_any_domain(real_posts, llama_server):
    port, _ = llama_server
    local_annotator(port, max_retries=0)  # the profile: completion mode, structured output by grammar
    domains = ("urgency", "therapeutic", "intensity", "adjunct", "modality", "redressal")
    _annotate_in_process(domains, 1)  # each domain's grammar on one real post: the behaviour, at CI's cost
    outcomes = list(Outcome.objects.all())
    assert len(outcomes) == 6
    assert [(o.domain.slug, o.reason, o.raw_answer) for o in outcomes if o.status != "ok"] == []
    assert all(o.parameters["structured"] == "grammar" for o in outcomes)


def test_json_object_with_the_schema_holds_chat_answers_to_it(real_posts, llama_server):
    port, _ = llama_server
    local_annotator(port, request_mode="chat", structured="json_object", max_retries=0)
    _annotate_in_process(("urgency", "adjunct"), 1)
    assert [(o.reason, o.raw_answer) for o in Outcome.objects.exclude(status="ok")] == []
    assert Outcome.objects.count() == 2


def test_the_server_refuses_a_json_schema_response_format_and_the_annotator_stops_with_one_clear_error(
        real_posts, llama_server):
    port, _ = llama_server
    local_annotator(port, request_mode="chat", structured="json_schema")
    _annotate_in_process(("urgency", "intensity"), 2)
    error = Annotator.objects.get(number=1).backend_error
    assert error.startswith("the server refuses structured output 'json_schema' (sent as response_format)")
    assert "HTTP 500" in error and "response_format" in error.split("HTTP 500", 1)[1]
    assert not Outcome.objects.exists()


def test_in_completion_mode_the_server_ignores_response_format_so_the_local_profile_sends_a_grammar(llama_server):
    """The fact behind the profile's default: a schema that allows one impossible code is not enforced."""
    port, _ = llama_server
    schema = {"type": "object", "properties": {"answer": {"type": "string", "enum": ["QQQ_ONLY"]}},
              "required": ["answer"], "additionalProperties": False}
    body = {"prompt": "Message: I cannot sleep.\nAnswer:", "max_tokens": 12, "temperature": 0, "json_schema": schema,
            "response_format": {"type": "json_object", "schema": schema}}
    answer = httpx.post(f"http://127.0.0.1:{port}/v1/completions", json=body, timeout=120).json()
    assert "QQQ_ONLY" not in answer["choices"][0]["text"]
