"""End to end through a real worker process: a loopback LLM that returns logprobs, an annotator that asks for them,
and a domain that routes labels below 0.5 to review. The answers the model was unsure of land in the review queue
with low_confidence; the confident ones do not; every stored outcome carries its probability."""

from __future__ import annotations

import pytest

from tests.fake_llm import Reply, chat_logprobs
from tests.helpers import make_samples, wait_until
from tests.worker_processes import WorkerProcess
from workers_app.engine.keys import WorkerKey
from workers_app.engine.queues import populate_queues
from workers_app.models import Annotator, Domain, Outcome, ReviewItem
from workers_app.review.flags import LOW_CONFIDENCE

pytestmark = pytest.mark.django_db(transaction=True)

UNSURE = "Unsure post"


def answer(body: dict) -> Reply:
    """LEVEL_1 either way; spelled with probability 0.3 x 0.5 = 0.15 for the unsure posts, 0.99 x 0.98 otherwise."""
    level, digit = (0.3, 0.5) if UNSURE in body["messages"][0]["content"] else (0.99, 0.98)
    return Reply(content="Final answer: <<LEVEL_1>>", logprobs=chat_logprobs(
        [("Final answer: ", 0.9), ("<<", 0.97), ("LEVEL", level), ("_1", digit), (">>", 0.99)]))


def test_a_real_workers_unsure_answers_land_in_the_review_queue_with_low_confidence(http_annotator, fake_llm):
    Annotator.objects.filter(number=1).update(request_logprobs=True)
    Domain.objects.filter(slug="urgency").update(review_below_confidence=0.5)
    fake_llm.reply_for = answer
    unsure = make_samples(2, UNSURE, vary=True)
    sure = make_samples(2, "Clear post", vary=True)
    key = WorkerKey(1, "urgency")
    populate_queues(1, "urgency")
    worker = WorkerProcess(key.queue, threads=2).wait_ready()
    try:
        wait_until(lambda: Outcome.objects.filter(annotator__number=1, domain__slug="urgency").count() == 4,
                   timeout=60, what="the worker's four outcomes")
    finally:
        worker.stop()
    assert all(body["body"]["logprobs"] is True and body["body"]["top_logprobs"] == 5 for body in fake_llm.requests)
    confidence = dict(Outcome.objects.values_list("sample_id", "confidence"))
    assert all(confidence[s] == pytest.approx(0.15) for s in unsure)
    assert all(confidence[s] == pytest.approx(0.99 * 0.98) for s in sure)
    routed = {item.sample_id: item.reasons for item in ReviewItem.objects.all()}
    assert routed == {sample: [LOW_CONFIDENCE] for sample in unsure}
