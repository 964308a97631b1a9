"""A worker another operation holds answers 409 with its per-worker results; nothing else is touched."""

from __future__ import annotations

import pytest

from workers_app.engine.keys import redis_key
from workers_app.fleet import services
from workers_app.models import Worker
from workers_app.redis_client import get_redis

pytestmark = pytest.mark.django_db


def test_a_busy_worker_is_409_with_the_results(as_operator, monkeypatch):
    monkeypatch.setattr(services, "LOCK_SECONDS", 0.3)  # how long an operation waits for the worker's lock
    held = get_redis().lock(redis_key("lock", "annotator_1_urgency"), timeout=30)
    assert held.acquire()
    try:
        response = as_operator.post_json("/api/v1/workers/actions/pause", {"worker": "annotator_1_urgency"})
    finally:
        held.release()
    assert response.status_code == 409
    body = response.json()
    assert body["error"] == "busy" and "annotator_1_urgency is busy" in body["detail"]
    assert body["results"][0]["ok"] is False
    assert Worker.objects.get(annotator__number=1, domain__slug="urgency").desired_state == "stopped"
