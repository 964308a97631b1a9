"""What ./run.sh leaves in its terminal: its own lines, warnings and errors, not one access-log line per request or
the Celery banners; start-up ends by saying again where the workspace is and how to log in. (The whole launcher runs
in tests/test_launcher.py.)"""

from __future__ import annotations

from pathlib import Path

import pytest

from annotation_site import launcher


@pytest.fixture
def data_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("DATA_DIR", str(tmp_path))
    return tmp_path


def test_the_web_server_writes_its_access_log_to_a_file_in_the_logs_folder(data_dir):
    command = launcher.web_command(8123)
    log = Path(command[command.index("--access-logfile") + 1])
    assert log == data_dir / "logs" / "web-access.log" and log.parent.is_dir()


def test_start_up_ends_with_the_url_the_login_and_where_the_logs_are(data_dir):
    lines = launcher.ready_lines(8123, "Log in as 'admin' with the password in /x/admin_password (mode 600)")
    assert lines[0] == lines[-1] == launcher.RULE
    assert "Ready. The workspace is at http://127.0.0.1:8123/dashboard/ (the admin at /admin/)" in lines
    assert "Log in as 'admin' with the password in /x/admin_password (mode 600)" in lines
    assert f"Logs: every request in {data_dir / 'logs' / 'web-access.log'}, each worker's in {data_dir / 'logs'}/" \
        in lines
    assert lines[-2] == "Press Ctrl-C to stop everything."


def test_the_celery_children_start_without_their_banners():
    for command in (launcher.CONTROL_WORKER, launcher.BEAT):
        assert command[command.index("annotation_site") + 1] == "--quiet"
