"""Gold checks as outcomes are stored: each annotator's rolling accuracy on the run's gold items, and the pause of
its workers when the accuracy falls below the run's threshold.

What counts: every well-formed outcome of a gold item (RunSample.gold) in a domain the reference labels. It is right
when its codes equal the reference's label (code sets: the same set, in any order); with several raters, the label
most of them gave (any of those tied). A malformed answer is no label, as everywhere in the product: it is not
scored (the health check watches malformed answers). An annotator's accuracy is over its last ``gold_window`` gold
answers of the run, all domains together (all of them when the run sets no window), and it is judged once it has
``gold_min_items`` of them.

The answers live in Redis, a hash per run (``gold:<run>``) with one field per annotator number: its answers in the
order stored, ``1`` right and ``0`` wrong, trimmed to the window. A Lua script appends and returns the string
before and after, so the thread whose answers take the accuracy below the threshold knows it was the one: the pause
is recorded once per fall. An annotator that stays below after staff resumed it is not paused again until it has
recovered and falls anew; its alert stays open while it is below. The hash caches the store: when it is missing (a
Redis restart, a reset) it is rebuilt from the stored outcomes, as the budgets' spend is.
"""

from __future__ import annotations

import logging
import threading
from collections import Counter, defaultdict
from dataclasses import dataclass

from redis.exceptions import RedisError

from audit.actions import Action
from workers_app.models import Outcome, ReferenceLabel, Run, RunSample, Worker
from workers_app.redis_client import get_redis
from workers_app.runs.gold import CHECKED_KINDS

from .keys import redis_key
from .pauses import record_pause, running_workers

log = logging.getLogger(__name__)

REASON = "gold"
BUILT = "built"
# "All gold answers" still has a bound: far more than any run's gold items in its domains.
MOST_KEPT = 100_000
_APPEND = """
if redis.call('hexists', KEYS[1], ARGV[4]) == 0 then return false end
local before = redis.call('hget', KEYS[1], ARGV[1]) or ''
local after = before .. ARGV[2]
local keep = tonumber(ARGV[3])
if #after > keep then after = string.sub(after, -keep) end
redis.call('hset', KEYS[1], ARGV[1], after)
return {before, after}
"""

Item = tuple[int, int]  # (sample id, domain id)
_answers: dict[tuple, dict[Item, frozenset[frozenset[str]]]] = {}
_lock = threading.Lock()


@dataclass(frozen=True)
class GoldScore:
    """An annotator's gold answers in the window of one run."""

    correct: int
    items: int

    @classmethod
    def of(cls, answers: str) -> GoldScore:
        return cls(answers.count("1"), len(answers))

    @property
    def accuracy(self) -> float | None:
        return self.correct / self.items if self.items else None

    def failing(self, run: Run) -> bool:
        """Judged (at least the run's minimum of gold answers) and below its threshold."""
        return (run.checks_gold and self.items >= run.gold_min_items
                and self.accuracy is not None and self.accuracy < run.gold_threshold)

    def reason(self, run: Run) -> str:
        return f"gold accuracy {self.accuracy:.2f} < {run.gold_threshold:.2f} over {self.items} items"

    def text(self) -> str:
        return "—" if self.accuracy is None else f"{self.accuracy:.2f} over {self.items}"


def gold_key(run_id: int) -> str:
    return redis_key("gold", run_id)


def _kept(run: Run) -> int:
    return run.gold_window or MOST_KEPT


def _most_given(labels: list[list[str]]) -> frozenset[frozenset[str]]:
    counts = Counter(frozenset(codes) for codes in labels)
    top = max(counts.values())
    return frozenset(label for label, n in counts.items() if n == top)


def gold_answers(run: Run) -> dict[Item, frozenset[frozenset[str]]]:
    """(sample id, domain id) -> the right labels of each gold item of the run, read once per process and run."""
    slot = (run.pk, run.created_at, run.gold_reference_id)
    with _lock:
        found = _answers.get(slot)
    if found is not None:
        return found
    gold = RunSample.objects.filter(run=run, gold=True).values("sample_id")
    given: dict[Item, list[list[str]]] = defaultdict(list)
    for sample_id, domain_id, labels in ReferenceLabel.objects.filter(
            reference_set_id=run.gold_reference_id, sample_id__in=gold, domain__slug__in=run.domains,
            domain__kind__in=CHECKED_KINDS).values_list("sample_id", "domain_id", "labels"):
        given[sample_id, domain_id].append(labels)
    found = {item: _most_given(labels) for item, labels in given.items()}
    with _lock:
        _answers[slot] = found
    return found


def _right(labels: list[str], answers: frozenset[frozenset[str]]) -> str:
    return "1" if frozenset(labels) in answers else "0"


def _from_store(run: Run) -> dict[int, str]:
    """Every annotator's gold answers of the run, in the order they were stored, trimmed to the window."""
    answers = gold_answers(run)
    found: dict[int, str] = defaultdict(str)
    gold = RunSample.objects.filter(run=run, gold=True).values("sample_id")
    rows = (Outcome.objects.filter(run=run, status=Outcome.Status.OK, sample_id__in=gold).order_by("id")
            .values_list("annotator__number", "sample_id", "domain_id", "labels"))
    for number, sample_id, domain_id, labels in rows.iterator(chunk_size=5000):
        right = answers.get((sample_id, domain_id))
        if right is not None:
            found[number] += _right(labels, right)
    return {number: given[-_kept(run):] for number, given in found.items()}


def rebuild_gold(run: Run) -> dict[int, str]:
    """Write the run's hash afresh from the store (its outcomes are stored before their answers are appended, so
    the rebuild holds every answer whose append found the hash missing)."""
    found = _from_store(run)
    pipe = get_redis().pipeline(transaction=True)
    pipe.delete(gold_key(run.pk))
    pipe.hset(gold_key(run.pk), mapping={**{str(n): given for n, given in found.items()}, BUILT: 1})
    pipe.execute()
    return found


def forget_gold(run: Run | None) -> None:
    """After the run's outcomes were deleted (None: every run's, a factory reset that deletes the runs too, whose
    ids may come back): the next read rebuilds the answers from the store."""
    with _lock:
        _answers.clear()  # this process's; a reset retires the workers, whose processes start afresh
    client = get_redis()
    keys = [gold_key(run.pk)] if run is not None else list(client.scan_iter(gold_key("*")))
    if keys:
        client.delete(*keys)


def gold_scores(run: Run) -> dict[int, GoldScore]:
    """Annotator number -> its rolling score in the run (one HGETALL; the store's answers when Redis has none)."""
    if not run.checks_gold:
        return {}
    try:
        stored = get_redis().hgetall(gold_key(run.pk))
        given = ({int(k): v for k, v in stored.items() if k != BUILT} if BUILT in stored else rebuild_gold(run))
    except RedisError as exc:
        log.warning("run %s: gold answers read from the store (Redis: %s)", run.name, exc)
        given = _from_store(run)
    return {number: GoldScore.of(answers) for number, answers in sorted(given.items())}


def _append(run: Run, number: int, answers: str) -> tuple[str, str]:
    """The annotator's answers before and after appending these; a missing hash is rebuilt from the store, which
    holds them already."""
    moved = get_redis().eval(_APPEND, 1, gold_key(run.pk), number, answers, _kept(run), BUILT)
    if moved is not None:
        return moved[0], moved[1]
    after = rebuild_gold(run).get(number, "")
    return after[:-len(answers)], after


def _drop_quietly(run: Run) -> None:
    """A hash that missed answers must not stay: without it the next read rebuilds from the store."""
    try:
        get_redis().delete(gold_key(run.pk))
    except RedisError:
        log.warning("run %s: gold answers may lack some until Redis answers and the hash is rebuilt", run.name)


def record_gold(rows: list[dict], *, actor: str) -> None:
    """After ``rows`` (new outcomes of one message, one run) were stored: append their gold answers and pause the
    annotator whose accuracy they take below the run's threshold."""
    run = rows[0]["run"] if rows else None
    if run is None or not run.checks_gold:
        return
    answers = gold_answers(run)
    given: dict[int, str] = defaultdict(str)
    for fields in rows:
        right = answers.get((fields["sample"].pk, fields["domain"].pk))
        if right is not None and fields["status"] == Outcome.Status.OK:
            given[fields["annotator"].number] += _right(fields["labels"], right)
    for number, new in given.items():
        try:
            before, after = _append(run, number, new)
        except RedisError as exc:
            log.warning("run %s: gold answers of annotator %s not appended (%s)", run.name, number, exc)
            _drop_quietly(run)
            continue
        score = GoldScore.of(after)
        if score.failing(run) and not GoldScore.of(before).failing(run):
            pause_for_gold(run, number, score, actor=actor)


def pause_for_gold(run: Run, number: int, score: GoldScore, *, actor: str) -> list[Worker]:
    """Pause the annotator's running workers (every domain: the answers of a model that fails its gold items are
    not trusted in any), with the reason on each and one audit row; the sweep tells the live processes and opens
    the alert. Returns the workers paused here (none when staff had paused them already)."""
    reason = f"{REASON}: {score.reason(run)}"
    return record_pause(running_workers(Worker.objects.filter(annotator__number=number)), reason,
                        action=Action.GOLD_CHECK_FAILED, actor=actor, target=f"annotator {number}",
                        parameters={"run": run.name, "accuracy": round(score.accuracy, 4), "items": score.items,
                                    "correct": score.correct, "threshold": run.gold_threshold})
