"""Several hosts: two real agents with their own FLEET_HOST and DATA_DIR on one Redis and one database."""

from __future__ import annotations

import signal
import threading
import time
from datetime import timedelta
from pathlib import Path

import psutil
import pytest
from django.conf import settings
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from django.db.models import Count
from django.utils import timezone

from audit.models import AuditLog
from tests.helpers import make_samples, wait_until
from tests.worker_processes import AgentProcess, assert_all_ok
from workers_app.engine.integrity import workbook_rows
from workers_app.excel.journal import journaled_row_count
from workers_app.fleet.hosts import InvalidHost, host_states
from workers_app.fleet.rows import key_of, select_workers
from workers_app.fleet.services import launch_workers, move_workers
from workers_app.models import DEFAULT_RUN, Alert, Annotator, Host, Outcome, Worker
from workers_app.monitoring.sweep import health_sweep
from workers_app.runs.files import workbook_path

pytestmark = pytest.mark.django_db(transaction=True)
LOST_AFTER = 6


def host_agent(name: str) -> tuple[AgentProcess, Path]:
    data_dir = settings.DATA_DIR / f"host-{name}"
    data_dir.mkdir(exist_ok=True)
    # Every host of one install shares its INSTALL_ID, and so its Redis keys (docs/guides/hosts-postgres.md).
    return AgentProcess(FLEET_HOST=name, DATA_DIR=str(data_dir), INSTALL_ID=settings.INSTALL_ID,
                        FLEET_HOST_LOST_SECONDS=str(LOST_AFTER),
                        WORKBOOK_REPORT_SECONDS="2"), data_dir


def kill_host(agent: AgentProcess) -> None:
    """The machine is gone: its agent and every worker process die at once, none of them cleaning up."""
    processes = [psutil.Process(agent.process.pid), *psutil.Process(agent.process.pid).children(recursive=True)]
    for process in processes:
        process.send_signal(signal.SIGKILL)
    agent.process.wait()


def on_host(name: str) -> list[Worker]:
    return [w for w in select_workers() if w.host == name]


def done(worker: Worker, total: int) -> bool:
    return Outcome.objects.filter(annotator=worker.annotator, domain=worker.domain).count() == total


def rows_in_workbook(data_dir: Path, worker: Worker) -> int | None:
    return journaled_row_count(data_dir / "runs" / DEFAULT_RUN / "annotations" / f"{worker.name}.xlsx")


def print_state(*agents: AgentProcess) -> None:
    """On failure: what the agents said and where each worker stands (pytest shows it with the failure)."""
    for agent in agents:
        print(f"--- {agent.log}\n{agent.log.read_text()[-4000:]}")
    for log in sorted(settings.DATA_DIR.glob("host-*/logs/*.log"))[:2]:
        print(f"--- {log}\n{log.read_text()[-3000:]}")
    for row in Worker.objects.select_related("annotator", "domain"):
        print(row.name, row.host, row.moving_from, row.desired_state, row.observed_state, row.last_error[-200:])


def test_two_hosts_run_the_fleet_move_workers_mid_run_and_lose_nothing_when_one_host_dies(catalogue, settings):
    settings.FLEET_HOST_LOST_SECONDS = LOST_AFTER
    total = 240
    Annotator.objects.update(builtin_latency_ms=150)  # 3 s per message of 20: the run lasts long enough to act in
    make_samples(total)
    workers = select_workers()
    Worker.objects.filter(pk__in=[w.pk for w in workers[:15]]).update(host="host-a")
    Worker.objects.filter(pk__in=[w.pk for w in workers[15:]]).update(host="host-b")
    agent_a, dir_a = host_agent("host-a")
    agent_b, dir_b = host_agent("host-b")
    try:
        wait_until(lambda: set(host_states().values()) == {"alive"} and Host.objects.count() == 2, timeout=60,
                   what="both agents to beat")
        assert_all_ok(launch_workers(select_workers(), actor="test", wait=False))
        wait_until(lambda: Worker.objects.filter(observed_state="running").count() == 30, timeout=120,
                   what="all 30 workers running")
        wait_until(lambda: Outcome.objects.count() >= 300, timeout=60, what="the run to be under way")

        moving = on_host("host-a")[:3]
        results = move_workers(moving, to_host="host-b", actor="test")
        assert all(r.ok for r in results), results
        for row in Worker.objects.filter(pk__in=[w.pk for w in moving]):
            assert (row.host, row.moving_from, row.observed_state) == ("host-b", "", "running")
            assert psutil.Process(row.pid).parent().pid == agent_b.process.pid
            assert not (dir_a / "runs" / DEFAULT_RUN / "annotations" / f"{row.name}.xlsx").exists(), "the old host dropped its copy"

        kill_host(agent_a)
        stranded = on_host("host-a")
        assert len(stranded) == 12
        wait_until(lambda: all(done(w, total) for w in on_host("host-b")), timeout=180,
                   what="host B's workers to finish")
        wait_until(lambda: host_states()["host-a"] == "lost", timeout=LOST_AFTER + 10, what="host A to be lost")
        health_sweep()
        alert = Alert.objects.get(key="host_lost:host-a", resolved_at=None)
        assert "12 worker(s)" in alert.message and "workers move --from host-a" in alert.message

        results = move_workers(stranded, to_host="host-b", actor="test")
        assert all(r.ok and "lost" in r.message for r in results), results
        wait_until(lambda: all(done(w, total) for w in select_workers()), timeout=240, what="every worker to finish")
        wait_until(lambda: all(rows_in_workbook(dir_b, w) == total for w in select_workers()), timeout=60,
                   what="host B's workbooks to hold every row")
    except AssertionError:
        print_state(agent_a, agent_b)
        raise
    finally:
        Worker.objects.update(desired_state=Worker.Desired.STOPPED)
        agent_b.stop()
        agent_a.stop()
    per_sample = Outcome.objects.values("sample_id", "annotator_id", "domain_id").annotate(n=Count("id"))
    assert len(per_sample) == total * 30 and {row["n"] for row in per_sample} == {1}
    assert all(workbook_rows(dir_b / "runs" / DEFAULT_RUN / "annotations" / f"{w.name}.xlsx") == total for w in select_workers())
    health_sweep()
    assert not Alert.objects.filter(key="host_lost:host-a", resolved_at=None).exists(), "nothing runs there now"


def test_a_worker_moved_while_stopped_waits_for_nothing_and_stays_stopped(catalogue):
    row = select_workers(1, "urgency")[0]
    [result] = move_workers([row], to_host="elsewhere", actor="test")
    row.refresh_from_db()
    assert result.ok and "no agent runs on elsewhere" in result.message
    assert (row.host, row.desired_state) == ("elsewhere", "stopped")


@pytest.mark.parametrize("bad", ["", " ", "-leading-dash", "a" * 101, "host/../etc", "h\u00f6st", "a b"])
def test_a_bad_host_name_is_refused_by_name_and_moves_nothing(catalogue, bad):
    rows = select_workers(2)
    before = list(Worker.objects.values_list("host", "moving_from"))
    with pytest.raises(InvalidHost, match="host name"):
        move_workers(rows, to_host=bad, actor="test")
    with pytest.raises(CommandError, match="host name"):
        call_command("workers", "move", "--annotator", "2", f"--to={bad}")
    assert list(Worker.objects.values_list("host", "moving_from")) == before


def test_the_move_command_needs_a_target_and_refuses_a_host_with_no_workers(catalogue):
    with pytest.raises(CommandError, match="move needs --to HOST"):
        call_command("workers", "move", "--all")
    with pytest.raises(CommandError, match="--to applies to move only"):
        call_command("workers", "pause", "--all", "--to", "b")
    with pytest.raises(CommandError, match="no worker is placed on host 'nowhere'"):
        call_command("workers", "move", "--from", "nowhere", "--to", "b")


def test_the_thirty_worker_fleet_completes_a_run_within_sixty_database_connections(catalogue):
    total = 40
    make_samples(total)
    peak = [0]
    stop = threading.Event()

    def sample_connections() -> None:
        # Its own connection: one sampler, counted with the rest.
        with connection.cursor() as cursor:
            while not stop.wait(0.2):
                cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()")
                peak[0] = max(peak[0], cursor.fetchone()[0])
        connection.close()

    postgres = connection.vendor == "postgresql"
    sampler = threading.Thread(target=sample_connections, daemon=True)
    agent = AgentProcess()
    try:
        if postgres:
            sampler.start()
        assert_all_ok(launch_workers(select_workers(), actor="test", wait=False))
        wait_until(lambda: Outcome.objects.count() == total * 30, timeout=240, what="the whole run")
        wait_until(lambda: all(journaled_row_count(workbook_path(key_of(w))) == total for w in select_workers()),
                   timeout=60, what="every workbook")
    finally:
        stop.set()
        Worker.objects.update(desired_state=Worker.Desired.STOPPED)
        agent.stop()
    assert not Worker.objects.filter(last_error__icontains="too many clients").exists()
    if postgres:
        assert 30 < peak[0] <= 60, f"peak connections {peak[0]}"


def test_a_host_that_comes_back_stops_its_processes_of_workers_taken_over_elsewhere(catalogue):
    row = select_workers(1, "urgency")[0]
    Worker.objects.filter(pk=row.pk).update(host="host-a")
    agent_a, _ = host_agent("host-a")
    try:
        assert_all_ok(launch_workers([row], actor="test", wait=False))
        wait_until(lambda: Worker.objects.get(pk=row.pk).observed_state == "running", timeout=60, what="running",
                   explain=lambda: agent_a.log.read_text()[-3000:])
        pid = Worker.objects.get(pk=row.pk).pid
        # What host B does when it takes over a worker of a lost host A (A was cut off, not dead).
        Worker.objects.filter(pk=row.pk).update(host="host-b", moving_from="", observed_state="starting", pid=None)
        wait_until(lambda: not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE,
                   timeout=40, what="host A to stop its stray process")
        time.sleep(1)
        after = Worker.objects.get(pk=row.pk)
        assert (after.host, after.observed_state, after.pid) == ("host-b", "starting", None), "the row is B's"
        assert "now runs on another host" in agent_a.log.read_text()
    except AssertionError:
        print_state(agent_a)
        raise
    finally:
        Worker.objects.update(desired_state=Worker.Desired.STOPPED)
        agent_a.stop()


def place_on_a_lost_host(*, alive: str = "host-b") -> list[Worker]:
    """Annotator 1's workers meant to run on host-a, whose agent last beat a minute ago; ``alive`` beats now."""
    Host.objects.create(name="host-a", last_seen=timezone.now() - timedelta(seconds=60))
    Host.objects.create(name=alive, last_seen=timezone.now())
    rows = select_workers(1)
    Worker.objects.filter(pk__in=[w.pk for w in rows]).update(host="host-a", desired_state="running",
                                                              observed_state="running")
    return rows


def test_a_lost_host_is_alerted_and_its_workers_are_not_auto_restarted(catalogue, settings):
    settings.FLEET_AUTO_FAILOVER = False
    rows = place_on_a_lost_host()
    report = health_sweep()
    assert report.lost_hosts == ["host-a"] and report.restarted == [] and report.failed_over == []
    assert "6 worker(s)" in Alert.objects.get(key="host_lost:host-a", resolved_at=None).message
    assert set(Worker.objects.filter(pk__in=[w.pk for w in rows]).values_list("host", "generation")) == {
        ("host-a", 0)}


def test_automatic_failover_moves_a_lost_hosts_workers_to_the_live_host(catalogue, settings):
    settings.FLEET_AUTO_FAILOVER = True
    rows = place_on_a_lost_host(alive="host-c")
    report = health_sweep()
    assert sorted(report.failed_over) == sorted(w.name for w in rows)
    assert set(Worker.objects.filter(pk__in=[w.pk for w in rows]).values_list("host", "moving_from")) == {
        ("host-c", "host-a")}, "host-c's agent takes them over (the old host is lost)"
    assert AuditLog.objects.filter(action="move_worker", actor="system:monitor").count() == 6
