"""Requests in flight that follow the rate limit: the controller's formula, the gate, and real workers against the
loopback fake LLM."""

from __future__ import annotations

import re
import threading
import time
from itertools import pairwise

import pytest

from tests.fake_llm import Reply, max_in_window
from tests.helpers import make_samples, run_check, wait_until
from tests.worker_processes import assert_all_ok
from workers_app.engine.concurrency import Gate, admit, process_gate
from workers_app.engine.keys import WorkerKey
from workers_app.engine.live import heartbeat_key
from workers_app.engine.ratelimit import RateLimiter
from workers_app.fleet.inflight import (
    PERIOD_SECONDS,
    Observation,
    held_messages,
    inflight_target,
    worth_changing,
)
from workers_app.fleet.rows import select_workers
from workers_app.fleet.services import launch_workers, pause_worker, stop_worker
from workers_app.models import Outcome, WorkerEvent
from workers_app.redis_client import get_redis

CHANGE = re.compile(r"in flight (\d+) → (\d+): ")


def seen(**fields) -> Observation:
    return Observation(**{"per_minute": 600, "latency_s": 2.0, "busy_workers": 6, "demand": 100, "slots_ahead": 0,
                          **fields})


def test_the_target_is_the_annotators_rate_times_latency_split_across_its_busy_workers():
    # 10 requests/s x 2 s = 20 in flight, a quarter more for the time outside the call, over 6 workers
    assert inflight_target(seen(), current=1, minimum=1, maximum=32) == 5
    assert inflight_target(seen(busy_workers=1), current=1, minimum=1, maximum=32) == 25
    assert inflight_target(seen(latency_s=0.2, busy_workers=1), current=9, minimum=1, maximum=32) == 3


def test_the_target_stays_within_the_bounds_and_the_workers_own_demand():
    assert inflight_target(seen(busy_workers=1, per_minute=6000), current=1, minimum=1, maximum=32) == 32
    assert inflight_target(seen(busy_workers=1, demand=7), current=1, minimum=1, maximum=32) == 7
    assert inflight_target(seen(per_minute=10), current=4, minimum=2, maximum=32) == 2


def test_an_idle_worker_goes_to_the_minimum_and_one_without_answers_keeps_its_target():
    assert inflight_target(seen(demand=0), current=20, minimum=1, maximum=32) == 1
    assert inflight_target(seen(latency_s=None), current=3, minimum=1, maximum=32) == 3


def test_without_headroom_the_target_does_not_grow_but_may_shrink():
    # more slots reserved ahead than busy workers: the limit already holds requests back
    assert inflight_target(seen(slots_ahead=20), current=3, minimum=1, maximum=32) == 3
    assert inflight_target(seen(slots_ahead=20), current=12, minimum=1, maximum=32) == 5


def test_small_steps_of_a_large_target_are_not_changes():
    assert not worth_changing(30, 31, minimum=1)
    assert worth_changing(30, 27, minimum=1) and worth_changing(3, 4, minimum=1) and worth_changing(2, 1, minimum=1)
    assert not worth_changing(5, 5, minimum=1)


def test_a_shrunk_gate_lets_no_one_in_until_enough_have_left():
    gate = Gate()
    gate.resize(3)
    for _ in range(3):
        gate.enter(time.monotonic() + 1)
    gate.resize(1)
    entered = threading.Event()
    threading.Thread(target=lambda: (gate.enter(time.monotonic() + 5), entered.set()), daemon=True).start()
    gate.leave(1.0)
    gate.leave(1.0)
    assert not entered.wait(0.3) and gate.held == 2
    gate.leave(2.0)
    assert entered.wait(2) and gate.inside == 1
    assert gate.latency_s == pytest.approx(1.1)


def test_a_full_gate_refuses_past_the_deadline_and_an_unsized_gate_never_waits():
    gate = Gate()
    for _ in range(50):
        gate.enter(time.monotonic())
    gate.resize(50)
    started = time.monotonic()
    with pytest.raises(TimeoutError):
        gate.enter(time.monotonic() + 0.2)
    assert 0.15 < time.monotonic() - started < 2 and gate.waiting == 0


def test_a_worker_holds_a_quarter_more_messages_than_its_requests_in_flight_within_its_pool():
    assert [held_messages(t) for t in (1, 4, 20, 30, 32)] == [2, 5, 25, 32, 32]


@pytest.fixture
def sized_gate():
    gate = process_gate()
    gate.resize(1)
    yield gate
    process_gate.cache_clear()  # later tests in this process meet an open gate again


def test_a_request_refused_a_rate_limit_slot_gives_its_place_in_the_gate_back(sized_gate):
    limiter = RateLimiter(get_redis(), annotator_number=9, per_minute=1)
    with admit(limiter, time.monotonic() + 1) as admission:
        assert sized_gate.inside == 1 and admission.slot is not None
    assert sized_gate.inside == 0 and sized_gate.latency_s is not None
    with pytest.raises(TimeoutError):  # the minute's one slot is spent
        admit(limiter, time.monotonic() + 0.5)
    assert sized_gate.inside == 0 and sized_gate.waiting == 0


def test_a_failed_request_leaves_the_gate_without_counting_as_an_answer(sized_gate):
    limiter = RateLimiter(get_redis(), annotator_number=9, per_minute=100)
    with pytest.raises(ConnectionError), admit(limiter, time.monotonic() + 1):
        raise ConnectionError("the LLM went away")
    assert sized_gate.inside == 0 and sized_gate.latency_s is None


@pytest.mark.parametrize("env, shown", [
    ({"WORKER_MIN_INFLIGHT": "0"}, "WORKER_MIN_INFLIGHT='0'"),
    ({"WORKER_MAX_INFLIGHT": "65"}, "WORKER_MAX_INFLIGHT='65'"),
    ({"WORKER_MAX_INFLIGHT": "lots"}, "WORKER_MAX_INFLIGHT='lots'"),
    ({"WORKER_MIN_INFLIGHT": "12", "WORKER_MAX_INFLIGHT": "8"}, "WORKER_MIN_INFLIGHT='12'"),
])
def test_bad_inflight_settings_are_refused_by_the_settings_check(tmp_path, env, shown):
    result = run_check(tmp_path, **env)
    assert result.returncode != 0 and "Traceback" not in result.stderr
    assert "annotation_site.E001" in result.stderr and shown in result.stderr


def test_good_inflight_settings_pass_the_check(tmp_path):
    result = run_check(tmp_path, WORKER_MIN_INFLIGHT="4", WORKER_MAX_INFLIGHT="4")
    assert result.returncode == 0, result.stderr


# Real worker processes of a real agent against the fake LLM.

def target_of(key: WorkerKey) -> str:
    return get_redis().hget(heartbeat_key(key), "inflight_target") or ""


def launch(number: int, *domains: str) -> None:
    workers = [w for domain in domains for w in select_workers(number, domain)]
    assert_all_ok(launch_workers(workers, actor="test"))


def slow_annotator(annotator, *, per_minute: int) -> None:
    annotator.requests_per_minute = per_minute
    annotator.timeout_seconds = 10
    annotator.save()


@pytest.mark.django_db(transaction=True)
def test_a_slow_llm_under_a_generous_limit_gets_many_requests_in_flight_then_the_idle_worker_shrinks(
        agent, http_annotator, fake_llm):
    fake_llm.default = Reply(delay=1.0)
    slow_annotator(http_annotator, per_minute=6000)
    make_samples(200, vary=True)
    key = WorkerKey(1, "urgency")
    launch(1, "urgency")
    wait_until(lambda: Outcome.objects.filter(annotator__number=1).count() == 200, 90, "all 200 outcomes")
    arrivals = sorted(r["at"] for r in fake_llm.requests)
    # each request takes a second at the server: those that arrived within one second were in flight together
    assert max_in_window(arrivals, 1.0) > 4
    wait_until(lambda: target_of(key) == "1", 4 * PERIOD_SECONDS + 5, "the idle worker back at the minimum")

    events = list(WorkerEvent.objects.filter(worker__annotator__number=1, worker__domain__slug="urgency",
                                             reason__startswith="in flight").order_by("at", "id"))
    steps = [tuple(map(int, CHANGE.match(e.reason).groups())) for e in events]
    assert steps[0][0] == 1 and max(after for _, after in steps) > 4 and steps[-1][1] == 1
    assert all(before == previous_after for (_, previous_after), (before, _) in pairwise(steps))
    assert events[-1].reason.endswith("idle")
    assert all(e.from_state == e.to_state == "running" and e.actor == "system:worker" for e in events)
    gaps = [(b.at - a.at).total_seconds() for a, b in pairwise(events)]
    assert all(gap > PERIOD_SECONDS - 0.5 for gap in gaps), gaps


@pytest.mark.django_db(transaction=True)
def test_a_paused_worker_takes_no_share_of_the_limit_from_its_running_sibling(agent, http_annotator, fake_llm):
    fake_llm.default = Reply(delay=1.0)
    slow_annotator(http_annotator, per_minute=600)
    make_samples(300, vary=True)
    launch(1, "urgency", "intensity")
    [paused] = select_workers(1, "intensity")
    pause_worker(paused, actor="test")
    # 10 requests/s x 1 s, a quarter more, all for the one worker that sends: 13 (half of it if both counted)
    wait_until(lambda: int(target_of(WorkerKey(1, "urgency")) or 0) >= 12, 30, "the running worker's whole share")
    time.sleep(2 * PERIOD_SECONDS + 1)  # the paused worker's controller has reported its queue meanwhile
    assert int(target_of(WorkerKey(1, "urgency"))) >= 12 and target_of(WorkerKey(1, "intensity")) == "1"
    reasons = WorkerEvent.objects.filter(worker__domain__slug="urgency", reason__startswith="in flight")
    assert all("over 1 busy worker(s)" in reason for reason in reasons.values_list("reason", flat=True))


@pytest.mark.django_db(transaction=True)
def test_under_a_tight_limit_the_server_never_sees_more_than_the_limit_in_any_window(
        agent, http_annotator, fake_llm):
    limit = 30
    fake_llm.default = Reply(delay=1.0)
    fake_llm.per_key_rpm = limit
    slow_annotator(http_annotator, per_minute=limit)
    make_samples(60, vary=True)
    launch(1, "urgency", "intensity", "modality")
    wait_until(lambda: fake_llm.arrived_at, 30, "the first request")
    first = min(times[0] for times in fake_llm.arrived_at.values())
    time.sleep(max(0.0, first + 62 - time.monotonic()))
    with fake_llm.lock:
        arrivals = sorted(t for times in fake_llm.arrived_at.values() for t in times)
        refused = sum(len(times) for times in fake_llm.limited_at.values())
    assert refused == 0
    assert limit - 3 <= max_in_window(arrivals, 60.0) <= limit  # the window was used, never overfilled
    targets = [int(target_of(WorkerKey(1, d))) for d in ("urgency", "intensity", "modality")]
    assert targets == [1, 1, 1]  # half a request a second takes one in flight, whatever the queue
    # Their tasks wait for rate-limit slots: a warm stop would wait out the grace period (15 s) for nothing.
    for row in (w for d in ("urgency", "intensity", "modality") for w in select_workers(1, d)):
        stop_worker(row, actor="test", force=True, wait=False)
