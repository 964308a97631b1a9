"""/metrics: Prometheus text that prometheus_client's own parser reads, every worker labelled, counters that grow."""

from __future__ import annotations

import pytest
from django.test import Client
from prometheus_client.parser import text_string_to_metric_families

from tests.fake_llm import Reply
from tests.helpers import make_samples
from workers_app.engine.annotate import annotate_sample
from workers_app.engine.keys import WorkerKey
from workers_app.models import Worker

pytestmark = pytest.mark.django_db


def scrape(client: Client | None = None) -> dict:
    response = (client or Client()).get("/metrics")
    assert response.status_code == 200, response.content
    return {family.name: family for family in text_string_to_metric_families(response.content.decode())}


def value(families: dict, name: str, **labels: str) -> float:
    family = families[name]
    found = [s.value for s in family.samples if all(s.labels.get(k) == v for k, v in labels.items())
             and s.name in (name, f"{name}_total")]
    return sum(found)


def test_every_worker_is_present_with_its_labels(catalogue):
    families = scrape()
    observed = families["annotation_worker_observed_state"]
    seen = {(s.labels["worker"], s.labels["annotator"], s.labels["domain"]) for s in observed.samples}
    expected = {(w.name, str(w.annotator.number), w.domain.slug)
                for w in Worker.objects.select_related("annotator", "domain")}
    assert len(expected) == 30 and seen == expected
    assert all(s.labels["host"] for s in observed.samples)
    for name in ("annotation_worker_desired_state", "annotation_worker_queue_messages", "annotation_worker_outcomes",
                 "annotation_worker_consuming", "annotation_llm_requests", "annotation_llm_latency_seconds",
                 "annotation_alerts_open", "annotation_ratelimit_waits", "annotation_llm_retries"):
        assert name in families, name
    assert value(families, "annotation_worker_observed_state", worker="annotator_1_urgency", state="stopped") == 1


def test_counters_grow_after_annotations(http_annotator, fake_llm):
    before = scrape()
    fake_llm.script.append(Reply(status=429))
    for sample in make_samples(2):
        annotate_sample(sample, WorkerKey(1, "urgency"), worker="w@test")
    after = scrape()
    grew = {name: value(after, name, annotator="1") - value(before, name, annotator="1")
            for name in ("annotation_llm_tokens_in", "annotation_llm_tokens_out", "annotation_llm_retries")}
    assert grew == {"annotation_llm_tokens_in": 200, "annotation_llm_tokens_out": 24, "annotation_llm_retries": 1}
    assert value(after, "annotation_llm_requests", annotator="1", status="200") == 2
    assert value(after, "annotation_llm_requests", annotator="1", status="429") == 1
    assert value(after, "annotation_annotations", annotator="1", status="ok") == 2
    assert value(after, "annotation_worker_outcomes", worker="annotator_1_urgency", status="ok") == 2
    latency = after["annotation_llm_latency_seconds"]
    assert [s.value for s in latency.samples if s.name.endswith("_count") and s.labels["annotator"] == "1"] == [2]


def test_a_request_that_gets_no_answer_is_counted_as_an_error(http_annotator, fake_llm):
    fake_llm.script.append(Reply(delay=1.5))  # past the annotator's 1 s timeout
    [sample] = make_samples(1)
    annotate_sample(sample, WorkerKey(1, "urgency"), worker="w@test")
    assert value(scrape(), "annotation_llm_requests", annotator="1", status="error") == 1


def test_an_open_alert_is_counted_by_kind(catalogue):
    from workers_app.models import Alert

    Alert.objects.create(key="stalled:annotator_1_urgency", kind="stalled", message="no heartbeat")
    assert value(scrape(), "annotation_alerts_open", kind="stalled") == 1


def test_metrics_need_the_token_or_an_allowed_network(catalogue, settings):
    settings.METRICS_ALLOW = ["10.0.0.0/8"]
    settings.METRICS_TOKEN = "scrape-secret"
    response = Client().get("/metrics")
    assert response.status_code == 403 and response.json()["error"] == "not_allowed"
    response = Client(HTTP_AUTHORIZATION="Bearer wrong").get("/metrics")
    assert response.status_code == 401 and response.json()["error"] == "invalid_token"
    assert "annotation_worker_observed_state" in scrape(Client(HTTP_AUTHORIZATION="Bearer scrape-secret"))
    assert Client(REMOTE_ADDR="10.1.2.3").get("/metrics").status_code == 200


def test_without_a_metrics_token_set_no_bearer_is_accepted(catalogue, settings):
    settings.METRICS_TOKEN = ""
    assert Client(HTTP_AUTHORIZATION="Bearer ").get("/metrics").status_code == 401
