"""Health checks, the beat sweep, the restart throttle and alerts."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.utils import timezone

from tests.fake_llm import Reply
from tests.helpers import make_samples, wait_until
from tests.worker_processes import ROOT, AgentProcess, assert_all_ok, worker_env
from workers_app.engine.annotate import annotate_sample
from workers_app.engine.flush import flush_workbook
from workers_app.engine.keys import WorkerKey
from workers_app.engine.live import heartbeat_key
from workers_app.fleet.rows import key_of, select_workers
from workers_app.fleet.services import launch_worker
from workers_app.models import Alert, Annotator, Worker, WorkerEvent, WorkerMetric
from workers_app.monitoring.checks import evaluate
from workers_app.monitoring.metrics import prune_metrics, snapshot_metrics
from workers_app.monitoring.sweep import ACTOR, AUTO_RESTART, health_sweep
from workers_app.redis_client import get_redis
from workers_app.runs.files import workbook_path

pytestmark = pytest.mark.django_db


def looks_alive_but_silent(number: int = 1, domain: str = "urgency", beat_age: float = 120) -> Worker:
    """A worker the database believes is running, whose last heartbeat is ``beat_age`` seconds old."""
    [row] = select_workers(number, domain)
    Worker.objects.filter(pk=row.pk).update(desired_state="running", observed_state="running",
                                            started_at=timezone.now() - timedelta(minutes=10))
    get_redis().hset(heartbeat_key(key_of(row)), mapping={"at": time.time() - beat_age, "rss": 50 * 2**20})
    row.refresh_from_db()
    return row


def test_a_silent_worker_is_marked_stalled_and_restarted(catalogue):
    row = looks_alive_but_silent()
    report = health_sweep()
    assert report.restarted == [row.name]
    after = Worker.objects.get(pk=row.pk)
    assert (after.observed_state, after.generation, after.force_stop) == ("stalled", 1, True)
    assert Alert.objects.filter(key=f"stalled:{row.name}", resolved_at__isnull=True).exists()


# Committed: the two sweeps run in threads of their own.
@pytest.mark.django_db(transaction=True)
def test_two_sweeps_at_once_restart_a_stalled_worker_once(catalogue):
    row = looks_alive_but_silent()
    reports = []
    sweeps = [threading.Thread(target=lambda: reports.append(health_sweep())) for _ in range(2)]
    for sweep in sweeps:
        sweep.start()
    for sweep in sweeps:
        sweep.join()
    assert Worker.objects.get(pk=row.pk).generation == 1
    assert sum(len(r.restarted) for r in reports) == 1


def test_the_fourth_automatic_restart_in_an_hour_is_refused_marked_and_alerted(catalogue):
    row = looks_alive_but_silent()
    for _ in range(3):
        WorkerEvent.objects.create(worker=row, from_state="running", to_state="stalled", actor=ACTOR,
                                   reason=f"{AUTO_RESTART}: stalled earlier")
    report = health_sweep()
    assert report.throttled == [row.name] and report.restarted == []
    after = Worker.objects.get(pk=row.pk)
    assert (after.observed_state, after.generation) == ("stalled", 0)
    alert = Alert.objects.get(key=f"throttled:{row.name}")
    assert "3 automatic restarts in the last hour" in alert.message


# Committed: the second sweep runs in a process of its own.
@pytest.mark.django_db(transaction=True)
def test_the_throttle_survives_a_restart_of_the_process_that_runs_the_sweep(catalogue):
    row = looks_alive_but_silent()
    for _ in range(3):
        WorkerEvent.objects.create(worker=row, from_state="running", to_state="stalled", actor=ACTOR,
                                   reason=f"{AUTO_RESTART}: stalled earlier")
    code = "from workers_app.monitoring.sweep import health_sweep; r = health_sweep(); print(r.throttled, r.restarted)"
    result = subprocess.run([sys.executable, "manage.py", "shell", "-c", code], cwd=ROOT, env=worker_env(),
                            capture_output=True, text=True, check=True)
    assert result.stdout.strip().splitlines()[-1] == f"['{row.name}'] []"
    assert Worker.objects.get(pk=row.pk).generation == 0


def test_a_manual_restart_is_not_throttled(catalogue):
    from workers_app.fleet.services import restart_worker

    row = looks_alive_but_silent()
    for _ in range(3):
        WorkerEvent.objects.create(worker=row, from_state="running", to_state="stalled", actor=ACTOR,
                                   reason=f"{AUTO_RESTART}: stalled earlier")
    restart_worker(row, actor="alice", wait=False)
    assert Worker.objects.get(pk=row.pk).generation == 1


def test_a_backend_failing_30_percent_trips_the_error_rate_check_and_alerts_once(catalogue):
    Annotator.objects.filter(number=2).update(builtin_malformed_rate=0.3, max_retries=0)
    for sample in make_samples(100, vary=True):
        annotate_sample(sample, WorkerKey(2, "urgency"), worker="w")
    health_sweep()
    health_sweep()
    [row] = select_workers(2, "urgency")
    [health] = evaluate([row])
    assert health.failing("error_rate") and 0.2 < health.error_rate < 0.4
    assert Alert.objects.filter(key=f"error_rate:{row.name}").count() == 1


def test_a_corrupted_workbook_fails_the_integrity_check_with_a_reason(catalogue):
    key = WorkerKey(3, "modality")
    for sample in make_samples(5):
        annotate_sample(sample, key, worker="w")
    flush_workbook(key)
    workbook_path(key).write_bytes(b"this is not a zip file at all")
    [health] = evaluate(select_workers(3, "modality"))
    [check] = [c for c in health.checks if c.name == "workbook"]
    assert not check.ok and check.reason.startswith("unreadable: BadZipFile")


def test_a_webhook_that_answers_500_is_recorded_and_does_not_stop_the_sweep(catalogue, fake_llm, settings):
    fake_llm.default = Reply(status=500)
    settings.ALERT_WEBHOOK_URL = fake_llm.url + "/hook"
    Annotator.objects.filter(number=4).update(backend_error="HTTP 401: bad key")
    row = looks_alive_but_silent(5, "adjunct")
    report = health_sweep()
    assert report.restarted == [row.name]
    alert = Alert.objects.get(key="backend:4")
    [delivery] = alert.deliveries
    assert delivery["ok"] is False and "500" in delivery["error"]
    assert fake_llm.requests[0]["body"]["alert"]["key"] in {"backend:4", f"stalled:{row.name}"}


def test_an_alert_is_resolved_once_when_its_condition_clears(catalogue, fake_llm, settings):
    settings.ALERT_WEBHOOK_URL = fake_llm.url + "/hook"
    Annotator.objects.filter(number=4).update(backend_error="HTTP 401: bad key")
    health_sweep()
    Annotator.objects.filter(number=4).update(backend_error="")
    health_sweep()
    health_sweep()
    alert = Alert.objects.get(key="backend:4")
    assert alert.resolved_at is not None
    assert [d["subject"] for d in alert.deliveries] == ["[annotation fleet] backend",
                                                        "[annotation fleet] resolved: backend"]


def test_the_health_command_exits_1_when_a_worker_is_unhealthy(catalogue, capsys):
    looks_alive_but_silent()
    with pytest.raises(SystemExit) as exit_status:
        call_command("workers", "health", "--worker", "1:urgency")
    assert exit_status.value.code == 1
    assert "UNHEALTHY" in capsys.readouterr().out
    call_command("workers", "health", "--worker", "2:urgency")  # stopped on purpose: healthy


def test_metrics_are_recorded_once_per_minute_and_pruned_after_30_days(catalogue):
    for sample in make_samples(3):
        annotate_sample(sample, WorkerKey(1, "urgency"), worker="w")
    assert snapshot_metrics() == 30 and snapshot_metrics() == 0
    WorkerMetric.objects.update(at=timezone.now() - timedelta(days=31))
    assert prune_metrics() == 30


# Committed: a real agent and worker read the rows.
@pytest.mark.django_db(transaction=True)
def test_a_worker_frozen_with_sigstop_is_restarted_by_the_sweep(catalogue, settings):
    settings.HEALTH_HEARTBEAT_MAX_AGE = 4
    Annotator.objects.update(builtin_latency_ms=10)
    agent = AgentProcess().wait_ready()
    try:
        [row] = select_workers(1, "intensity")
        assert_all_ok([launch_worker(row, actor="test")], agent)
        frozen = Worker.objects.get(pk=row.pk).pid
        os.kill(frozen, signal.SIGSTOP)
        deadline = time.monotonic() + 40
        while not health_sweep().restarted:
            assert time.monotonic() < deadline, "the sweep never saw the worker as stalled"
            time.sleep(1)
        while (Worker.objects.get(pk=row.pk).observed_state != "running"
               or Worker.objects.get(pk=row.pk).pid == frozen):
            assert time.monotonic() < deadline + 20, "the frozen worker was not replaced"
            time.sleep(0.2)
        make_samples(20)
        assert_all_ok([launch_worker(row, actor="test")], agent)
        wait_until(lambda: Worker.objects.get(pk=row.pk).events.filter(reason__startswith=AUTO_RESTART).count() == 1,
                   what="exactly one automatic restart")
    finally:
        Worker.objects.update(desired_state="stopped")
        agent.stop()
