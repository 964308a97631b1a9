"""Each worker's progress counters of a run (``progress:<run>:<worker>``: ok, malformed, last_at, writes).

A store adds to the counters of the run its outcomes belong to, so a message of the previous run that finishes after
a switch counts for that run, never for the new one. A rebuild from the store (a launch, a sync, the minute's check)
must not race a store: between its count and its write, a store that committed before the count and adds after it
would be counted twice, one that adds before the rebuild's reset would be lost. So every store also raises
``writes``, and a rebuild writes its counts only if ``writes`` has not moved since it read it before counting;
otherwise it counts again.
"""

from __future__ import annotations

from django.db.models import Count, Max

from workers_app.models import Outcome, Run
from workers_app.redis_client import get_redis

from .keys import WorkerKey

REBUILD_ATTEMPTS = 5
# KEYS[1]: the counters; ARGV: writes seen before counting, ok, malformed, last_at ('' for none). 1 if written.
_SET_IF_UNCHANGED = """
if (redis.call('HGET', KEYS[1], 'writes') or '0') ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], 'ok', ARGV[2], 'malformed', ARGV[3])
if ARGV[4] == '' then redis.call('HDEL', KEYS[1], 'last_at') else redis.call('HSET', KEYS[1], 'last_at', ARGV[4]) end
return 1
"""


def add_stored(pipe, key: WorkerKey, run_id: int, statuses: dict[str, int], now: float) -> None:
    """In the store's pipeline: the outcomes just stored, by status."""
    name = key.progress_key(run_id)
    for status, count in statuses.items():
        pipe.hincrby(name, status, count)
    pipe.hincrby(name, "writes", 1)
    if statuses:
        pipe.hset(name, "last_at", now)


def read(keys: list[WorkerKey], run: Run) -> dict[WorkerKey, dict[str, int]]:
    pipe = get_redis().pipeline(transaction=False)
    for key in keys:
        pipe.hmget(key.progress_key(run.pk), "ok", "malformed")
    return {key: {"ok": int(ok or 0), "malformed": int(bad or 0)}
            for key, (ok, bad) in zip(keys, pipe.execute(), strict=True)}


def _stored(keys: list[WorkerKey], run: Run) -> dict[WorkerKey, tuple[dict[str, int], float | None]]:
    """Per worker, its outcomes of ``run`` by status and the time of its last one: one grouped query."""
    found = {key: ({"ok": 0, "malformed": 0}, None) for key in keys}
    rows = (Outcome.objects.filter(run=run).values("annotator__number", "domain__slug", "status")
            .annotate(n=Count("id"), last=Max("created_at")).order_by())
    for row in rows:
        key = WorkerKey(row["annotator__number"], row["domain__slug"])
        if key in found:
            counts, last = found[key]
            counts[row["status"]] = row["n"]
            stamp = row["last"].timestamp() if row["last"] else None
            found[key] = (counts, max(filter(None, (last, stamp)), default=None))
    return found


def rebuild(keys: list[WorkerKey], run: Run) -> dict[WorkerKey, dict[str, int]]:
    """Set these workers' counters of ``run`` to what the store holds, without losing or doubling a store that runs
    meanwhile; return the counts written. A worker whose counters kept moving through every attempt is left as the
    stores made it (the next rebuild sets it right)."""
    client = get_redis()
    set_if_unchanged = client.register_script(_SET_IF_UNCHANGED)
    written: dict[WorkerKey, dict[str, int]] = {}
    pending = list(keys)
    for _ in range(REBUILD_ATTEMPTS):
        if not pending:
            break
        pipe = client.pipeline(transaction=False)
        for key in pending:
            pipe.hget(key.progress_key(run.pk), "writes")
        seen = {key: writes or "0" for key, writes in zip(pending, pipe.execute(), strict=True)}
        stored = _stored(pending, run)
        moved = []
        for key in pending:
            counts, last = stored[key]
            args = [seen[key], counts["ok"], counts["malformed"], "" if last is None else repr(last)]
            if set_if_unchanged(keys=[key.progress_key(run.pk)], args=args):
                written[key] = counts
            else:
                moved.append(key)
        pending = moved
    return written


def forget(key: WorkerKey) -> None:
    """Drop the worker's counters of every run (its outcomes are being deleted; the next rebuild counts afresh)."""
    client = get_redis()
    doomed = list(client.scan_iter(match=key.progress_key("*"), count=1000))
    if doomed:
        client.delete(*doomed)


def repair(keys: list[WorkerKey], run: Run) -> list[WorkerKey]:
    """The workers whose counters of ``run`` differed from the store, now set right."""
    cached = read(keys, run)
    return [key for key, counts in rebuild(keys, run).items() if counts != cached[key]]
