"""Two installs on one machine share one Redis server and database number without meeting: each keeps its keys,
queues and locks under its own install id; a copy that would take another install's keys is refused."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings

from tests.helpers import make_samples, stored, wait_until, worker
from tests.worker_processes import ROOT, AgentProcess, assert_all_ok, worker_env
from workers_app.engine.queues import populate_queues
from workers_app.fleet.install import InstallConflict, check_install
from workers_app.fleet.services import launch_worker
from workers_app.models import Alert, Installation
from workers_app.monitoring.sweep import health_sweep
from workers_app.redis_client import get_redis

pytestmark = pytest.mark.django_db(transaction=True)


def other_install(data_dir: Path, **env: str) -> dict[str, str]:
    """The environment of a second install: its own DATA_DIR and SQLite database, this test's Redis."""
    data_dir.mkdir(exist_ok=True)
    return worker_env(DATA_DIR=str(data_dir), DATABASE_URL=f"sqlite:///{data_dir / 'db.sqlite3'}", **env)


def manage(env: dict[str, str], *arguments: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "manage.py", *arguments], cwd=ROOT, env=env, capture_output=True,
                          text=True, check=False, timeout=120)


def set_up(env: dict[str, str]) -> None:
    for command in (["migrate", "-v", "0"], ["seed_defaults"], ["import_corpus", str(settings.DEMO_CORPUS)]):
        result = manage(env, *command)
        assert result.returncode == 0, result.stderr[-2000:]


def outcomes_in(data_dir: Path) -> int:
    with sqlite3.connect(f"file:{data_dir / 'db.sqlite3'}?mode=ro", uri=True, timeout=10) as connection:
        return connection.execute("SELECT count(*) FROM workers_app_outcome").fetchone()[0]


def test_two_installs_on_one_redis_database_both_finish_and_neither_sees_the_other(agent, tmp_path):
    second_dir = tmp_path / "second-install"
    second = other_install(second_dir)
    set_up(second)
    second_agent = AgentProcess(**{k: second[k] for k in ("DATA_DIR", "DATABASE_URL")}).wait_ready()
    try:
        launched = manage(second, "workers", "launch", "--worker", "1:urgency", "--json")
        assert launched.returncode == 0 and all(r["ok"] for r in json.loads(launched.stdout)), launched.stderr
        row = worker(1, "urgency")
        assert_all_ok([launch_worker(row, actor="test")], agent)
        make_samples(30, vary=True)
        populate_queues(1, "urgency")

        wait_until(lambda: stored(1, "urgency") == 30 and outcomes_in(second_dir) == 40, timeout=90,
                   what="both installs' runs", explain=lambda: f"{stored(1, 'urgency')} and "
                   f"{outcomes_in(second_dir)}\n{second_agent.log.read_text()[-2000:]}")
        report = health_sweep()
        assert [h.worker.name for h in report.health if h.worker.observed_state == "running"] == [row.name]
        assert report.restarted == [] and not Alert.objects.filter(resolved_at__isnull=True).exists()
        prefixes = {key.split(":")[1] for key in get_redis().keys("annot:*")}
        assert prefixes == {settings.INSTALL_ID, (second_dir / "install_id").read_text().strip()}
    finally:
        second_agent.stop()
    assert "another fleet agent" not in second_agent.log.read_text()


def test_a_copy_that_carries_another_installs_id_is_refused_at_start(catalogue, tmp_path):
    check_install()  # this install holds its namespace, as its running agent would
    copy = other_install(tmp_path / "copy", INSTALL_ID=settings.INSTALL_ID)
    set_up(copy)
    refused = AgentProcess(**{k: copy[k] for k in ("DATA_DIR", "DATABASE_URL", "INSTALL_ID")})
    assert refused.process.wait(timeout=60) == 4
    assert "belong to another install" in refused.log.read_text()


def test_a_host_whose_install_id_is_not_its_databases_is_refused(catalogue, settings):
    check_install()
    settings.INSTALL_ID = "some-other-install"
    with pytest.raises(InstallConflict, match=f"set INSTALL_ID={Installation.objects.get().install_id}"):
        check_install()
