"""Batch mode set up in one process for the tests: an annotator in batch mode against the loopback batch API
(tests/fake_batch.py), samples taken into pending batch requests, one batch held in flight."""

from __future__ import annotations

from decimal import Decimal

from django.utils import timezone

from tests.helpers import make_samples
from workers_app.engine.annotate import annotate_samples
from workers_app.engine.batch import submit_pending
from workers_app.engine.cost import forget_cached_prices
from workers_app.engine.keys import WorkerKey
from workers_app.models import Annotator, AnnotatorPrice, Batch
from workers_app.runs.current import current_run

URGENCY = WorkerKey(1, "urgency")
# 100 prompt and 12 completion tokens per answer: 0.016 live, 0.008 at the default batch price (50 %).
INPUT, OUTPUT = Decimal("0.1"), Decimal("0.5")
BATCH_PER_CALL = Decimal("0.008")


def batch_annotator(url: str, *, size: int = 4, protocol: str = Annotator.BatchProtocol.OPENAI) -> Annotator:
    annotator = Annotator.objects.get(number=1)
    annotator.backend = Annotator.Backend.OPENAI_COMPATIBLE
    annotator.base_url = url
    annotator.model = "fake-model"
    annotator.mode = Annotator.Mode.BATCH
    annotator.batch_protocol = protocol
    annotator.batch_size = size
    annotator.save()
    forget_cached_prices()
    AnnotatorPrice.objects.create(annotator=annotator, valid_from=timezone.localdate(), input_per_1k=INPUT,
                                  output_per_1k=OUTPUT)
    return annotator


def take(count: int) -> list[int]:
    """``count`` samples whose messages the worker took (recorded as pending batch requests)."""
    samples = make_samples(count, vary=True)
    annotate_samples(samples, URGENCY, worker="w", run_id=current_run().pk)
    return samples


def one_batch_in_flight(fake, taken: int = 5, protocol: str = Annotator.BatchProtocol.OPENAI) -> Batch:
    """``taken`` samples taken, a batch of 3 submitted and held in flight, the rest waiting for a batch."""
    batch_annotator(fake.url, size=3, protocol=protocol)
    take(taken)
    fake.hold.set()
    return submit_pending(URGENCY, worker="w")


