"""Samples a running worker was given that sit nowhere: in no queue, in no consumer's hands, in no outcome.

Kombu's Redis transport takes a message off its list before it records it as unacknowledged, so a worker SIGKILLed
between the two loses the message. The chaos test showed it: 20 samples claimed for annotator_2_intensity, none
waiting, none held, none stored, and the worker idle for good, since the health sweep sees an empty queue as
"nothing to do". The fleet agent hands such samples out again. A sample given twice costs at most one more call,
and the store keeps one outcome.
"""

from __future__ import annotations

from workers_app.engine.batch_requests import waiting_in_batches
from workers_app.engine.keys import WorkerKey
from workers_app.engine.queues import counts_from_store, populate_keys, queue_length, queues_holding, sync_keys
from workers_app.models import Worker
from workers_app.runs.current import current_run, run_samples, takes_part

from .rows import key_of


class LostWork:
    """Remembers which idle workers fell short at the last look: only a shortfall seen twice, with nothing stored
    in between, is lost work (a message taken off its queue a moment ago is held or stored by the next look)."""

    def __init__(self) -> None:
        self.short: dict[WorkerKey, int] = {}  # stored outcomes when the shortfall was first seen

    def hand_out_again(self, workers: list[Worker]) -> dict[str, int]:
        """Queue again, for these running workers, the current run's samples that are lost; per worker, how many."""
        run = current_run()
        holding = queues_holding()
        idle = [key_of(w) for w in workers if w.annotator.enabled and not w.annotator.backend_error
                and takes_part(run, w.annotator.number, w.domain.slug)
                and key_of(w).queue not in holding and queue_length(key_of(w)) == 0]
        wanted = run_samples(run).count() if idle else 0
        # A batch-mode worker's samples wait in its batches with an empty queue: given out, not lost.
        in_batches = waiting_in_batches(idle, run)
        stored = {key: sum(counts.values()) + in_batches[key] for key, counts in counts_from_store(idle, run).items()}
        short = {key: n for key, n in stored.items() if n < wanted}
        lost = [key for key, n in short.items() if self.short.get(key) == n]
        self.short = {key: n for key, n in short.items() if key not in lost}
        if not lost:
            return {}
        sync_keys(lost)  # the claims of the lost samples go: nothing waits for them
        return {name: n for name, n in populate_keys(lost).items() if n}
