"""Which samples are waiting where: queue population and the Redis checkpoints rebuilt from the store.

Redis keeps, per worker, the set of sample ids that have a message in its queue (so populating twice
queues nothing new) and progress counters. Both are caches: ``sync_checkpoints`` rebuilds them from the
database and the queue lists themselves, so a wiped Redis costs nothing but a sync.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterable, Iterator
from itertools import zip_longest

from django.conf import settings
from django.db.models import Count

from annotation_site.celery import app
from workers_app.models import DEFAULT_RUN, Annotator, Domain, Outcome, Run
from workers_app.models.catalogue import IN_PROCESS_BACKENDS
from workers_app.redis_client import get_redis
from workers_app.runs.current import current_run, run_samples, takes_part

from . import counters
from .keys import WorkerKey, broker_key
from .live import mark_work_available

# The task that workers_app.tasks defines; sent by name, since the engine sits below the tasks module.
ANNOTATE_TASK = "workers_app.annotate"
ENQUEUE_BATCH = 1000
BUILTIN_SAMPLES_PER_MESSAGE = 20
PUBLISH_BATCH = 500


class UnknownWorker(ValueError):
    """An annotator number, domain or worker name that the catalogue does not have."""


def worker_keys(annotator: int | None = None, domain: str | None = None) -> list[WorkerKey]:
    numbers = list(Annotator.objects.values_list("number", flat=True))
    slugs = list(Domain.objects.values_list("slug", flat=True))
    if annotator is not None and annotator not in numbers:
        raise UnknownWorker(f"no annotator {annotator}; the annotators are {', '.join(map(str, numbers)) or 'none'}")
    if domain is not None and domain not in slugs:
        raise UnknownWorker(f"no domain '{domain}'; the domains are {', '.join(slugs) or 'none'}")
    return [WorkerKey(n, s) for n in numbers for s in slugs
            if (annotator is None or n == annotator) and (domain is None or s == domain)]


def _outcome_filter(key: WorkerKey, run: Run) -> dict:
    return {"run": run, "annotator__number": key.annotator, "domain__slug": key.domain}


def samples_without_outcome(key: WorkerKey, run: Run) -> list[int]:
    """The run's samples this worker has not stored for it; none when the run leaves the worker out."""
    if not takes_part(run, key.annotator, key.domain):
        return []
    done = Outcome.objects.filter(**_outcome_filter(key, run)).values("sample_id")
    return list(run_samples(run).exclude(pk__in=done).order_by("pk").values_list("pk", flat=True))


def populate_queues(annotator: int | None = None, domain: str | None = None) -> dict[str, int]:
    """Queue exactly the samples that have no outcome and no message waiting; return how many per worker."""
    return populate_keys(worker_keys(annotator, domain))


def populate_keys(keys: list[WorkerKey]) -> dict[str, int]:
    """Queue the current run's samples for these workers."""
    run = current_run()
    claimed = claim_samples(keys, run)
    send_claimed(claimed, run)
    return {str(key): len(ids) for key, ids in claimed.items()}


def samples_per_message(key: WorkerKey) -> int:
    """One LLM call per message keeps a pause prompt; the free in-process baselines (built-in, trained) take many at
    once, since Celery's own cost per message is larger than their work."""
    backend = Annotator.objects.filter(number=key.annotator).values_list("backend", flat=True).first()
    return BUILTIN_SAMPLES_PER_MESSAGE if backend in IN_PROCESS_BACKENDS else 1


# SADD answers 1 only to the caller that added the id: two fills at once claim (and so queue) a sample once. One
# script call per batch returns the ids this caller added, instead of a thousand-command pipeline to build and read.
_CLAIM = """
local added = {}
for _, id in ipairs(ARGV) do
  if redis.call('SADD', KEYS[1], id) == 1 then added[#added + 1] = id end
end
return added
"""


def claim_samples(keys: list[WorkerKey], run: Run) -> dict[WorkerKey, list[int]]:
    """Per worker, the run's samples that have no outcome and no message waiting, each marked as queued."""
    claim = get_redis().register_script(_CLAIM)
    claimed = {}
    for key in keys:
        pending = samples_without_outcome(key, run)
        claimed[key] = [int(sample_id) for start in range(0, len(pending), ENQUEUE_BATCH)
                        for sample_id in claim(keys=[key.queued_key], args=pending[start : start + ENQUEUE_BATCH])]
    return claimed


def _split(ids: list[int], size: int) -> list[list[int]]:
    return [ids[first : first + size] for first in range(0, len(ids), size)]


def send_claimed(claimed: dict[WorkerKey, list[int]], run: Run) -> None:
    """A message per sample, or per BUILTIN_SAMPLES_PER_MESSAGE for the built-in baseline, through one producer
    whose writes to Redis go in pipelined batches (kombu's publish batch) instead of a round trip each. Queues
    are filled in turn, a message each, so that every worker has work within the first moments of a fill (one
    sample per message for an LLM makes 56,000 messages: queue by queue, the last worker waited half a minute).
    A failure part-way leaves claimed samples without a message: the next launch's sync finds them and queues
    them."""
    batches = {key: _split(ids, samples_per_message(key)) for key, ids in claimed.items()}
    mark_work_available([key for key, ids in claimed.items() if ids], only_if_idle=True)
    with app.producer_or_acquire() as producer, producer.batch(max_size=PUBLISH_BATCH):
        for round_ in zip_longest(*batches.values()):
            for key, batch in zip(batches, round_, strict=True):
                if batch:
                    # Given, Celery's log line for the task costs no saferepr of the arguments per message.
                    app.send_task(ANNOTATE_TASK, args=[batch, key.annotator, key.domain, run.pk], queue=key.queue,
                                  producer=producer, ignore_result=True, kwargsrepr="{}",
                                  argsrepr=f"[{len(batch)} samples from {batch[0]}, {key.annotator}, "
                                           f"{key.domain!r}]")


def _sample_ids_in_queue(raw_messages: Iterable[str], run: Run) -> set[str]:
    """The samples with a message of the run waiting (a message queued before runs existed is the default run's)."""
    ids = set()
    for raw in raw_messages:
        try:
            message = json.loads(raw)
            args = json.loads(base64.b64decode(message["body"]))[0]
            if is_for_run(args, run):
                ids.update(str(sample_id) for sample_id in args[0])
        except (ValueError, KeyError, IndexError, TypeError):
            continue  # not one of our messages; it cannot stand for a sample
    return ids


def is_for_run(args: list, run: Run) -> bool:
    """A message names its run; one queued before runs existed belongs to the default run."""
    named = args[3] if len(args) > 3 else None
    return named == run.pk or (named is None and run.name == DEFAULT_RUN)


def queue_length(key: WorkerKey) -> int:
    return get_redis().llen(key.queue_key)


def counts_from_store(keys: list[WorkerKey], run: Run | None = None) -> dict[WorkerKey, dict[str, int]]:
    """Per worker, its stored outcomes of the run (the current run when not given) by status."""
    counts = {key: {"ok": 0, "malformed": 0} for key in keys}
    rows = (Outcome.objects.filter(run=run or current_run()).values("annotator__number", "domain__slug", "status")
            .annotate(n=Count("id")).order_by())
    for row in rows:
        key = WorkerKey(row["annotator__number"], row["domain__slug"])
        if key in counts:
            counts[key][row["status"]] = row["n"]
    return counts


def sync_checkpoints(annotator: int | None = None, domain: str | None = None) -> dict[str, dict[str, int]]:
    """Rebuild the progress counters and the queued sets from the store and the real queue contents."""
    return sync_keys(worker_keys(annotator, domain))


def sync_keys(keys: list[WorkerKey]) -> dict[str, dict[str, int]]:
    client = get_redis()
    synced = {}
    run = current_run()
    written = counters.rebuild(keys, run)
    for key in keys:
        waiting = _sample_ids_in_queue(client.lrange(key.queue_key, 0, -1), run)
        recent = list(Outcome.objects.filter(**_outcome_filter(key, run)).order_by("-id").values_list(
            "status", flat=True)[: settings.HEALTH_ERROR_WINDOW])
        pipe = client.pipeline()
        pipe.delete(key.queued_key, key.recent_key)
        if recent:
            pipe.rpush(key.recent_key, *recent)
        if waiting:
            pipe.sadd(key.queued_key, *waiting)
        pipe.execute()
        counts = written.get(key) or counters.read([key], run)[key]
        synced[str(key)] = {**counts, "queued": len(waiting)}
    return synced


def progress(key: WorkerKey) -> dict[str, int]:
    """Its counters of the current run."""
    return counters.read([key], current_run())[key]


def _unacked() -> Iterator[tuple[str, str]]:
    """(delivery tag, queue) of every message a consumer took and has not acknowledged.

    Kombu keeps them in one hash for all queues: tag -> [payload, exchange, routing key (the queue's name)]."""
    for tag, raw in get_redis().hscan_iter(broker_key("unacked")):
        try:
            yield tag, json.loads(raw)[2]
        except (ValueError, IndexError, TypeError):
            continue


def unacked_tags(key: WorkerKey) -> list[str]:
    """Delivery tags of this queue's messages that its consumer holds unacknowledged."""
    return [tag for tag, queue in _unacked() if queue == key.queue]


def queues_holding() -> set[str]:
    """The queues whose consumer holds a message unacknowledged (being answered, or waiting for its retry)."""
    return {queue for _, queue in _unacked()}


def requeue_unacked(key: WorkerKey) -> int:
    """Put back at the head of the queue what its consumer held when it died; return how many messages.

    Each queue has exactly one consumer, so once that process is gone its unacknowledged messages can come back at
    once rather than after the broker's visibility timeout; a late second delivery finds the store and does nothing.
    """
    tags = unacked_tags(key)
    if tags:
        mark_work_available([key], only_if_idle=True)
        with app.connection_for_write() as connection:
            qos = connection.default_channel.qos
            for tag in tags:
                qos.restore_by_tag(tag)
    return len(tags)


def purge_queue(key: WorkerKey) -> int:
    """Drop every message of this worker's queue, waiting or delivered-but-unacknowledged; return how many."""
    client = get_redis()
    removed = client.llen(key.queue_key)
    client.delete(key.queue_key)
    stale = unacked_tags(key)
    if stale:
        client.hdel(broker_key("unacked"), *stale)
        client.zrem(broker_key("unacked_index"), *stale)
    client.delete(key.queued_key, key.recent_key)
    return removed + len(stale)
