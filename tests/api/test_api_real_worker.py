"""The API against a real fleet agent and a real Celery worker process: what Celery itself then reports."""

from __future__ import annotations

import pytest

from annotation_site.celery import app
from tests.api.conftest import TokenClient, make_token
from tests.helpers import wait_until
from workers_app.models import Worker

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("roles")]

NAME = "annotator_1_urgency"


def consumed_queues(node: str) -> set[str]:
    """The queues Celery's own inspect says the node consumes."""
    replies = app.control.inspect(destination=[node], timeout=2).active_queues() or {}
    return {queue["name"] for queue in replies.get(node, [])}


def row() -> Worker:
    return Worker.objects.select_related("annotator", "domain").get(annotator__number=1, domain__slug="urgency")


def test_pause_through_the_api_stops_the_worker_consuming_as_celery_inspect_shows(agent, roles):
    operator = TokenClient(make_token(roles["operator"], "ops"))
    assert operator.post_json("/api/v1/workers/actions/launch", {"worker": NAME}).status_code == 200
    node = row().node_name
    try:
        wait_until(lambda: NAME in consumed_queues(node), timeout=90, what="the worker to consume its queue")
    except AssertionError as exc:
        raise AssertionError(f"{exc}; agent log:\n{agent.log.read_text()[-3000:]}") from None

    viewer = TokenClient(make_token(roles["viewer"], "dash"))
    refused = viewer.post_json("/api/v1/workers/actions/pause", {"worker": NAME})
    assert refused.status_code == 403 and "workers_app.pause_worker" in refused.json()["detail"]
    assert NAME in consumed_queues(node) and row().desired_state == "running"

    response = operator.post_json("/api/v1/workers/actions/pause", {"worker": NAME})
    assert response.status_code == 200
    assert response.json()["results"] == [{"worker": NAME, "ok": True, "state": "paused", "message": "paused",
                                           "detail": {}}]
    # the node confirms the pause and cancels its consumer on its own event loop right after (as Celery's
    # cancel_consumer does): an inspect sent at once may still see the queue for a moment
    wait_until(lambda: NAME not in consumed_queues(node), timeout=10, what="the worker to stop consuming")
    status = operator.get(f"/api/v1/workers/{NAME}").json()
    assert status["desired"] == "paused" and status["observed"] == "paused"
