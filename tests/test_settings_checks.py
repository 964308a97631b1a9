from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def run_check(tmp_path, **env) -> subprocess.CompletedProcess:
    environment = {**os.environ, "DJANGO_SETTINGS_MODULE": "annotation_site.settings",
                   "DATA_DIR": str(tmp_path), **env}
    return subprocess.run([sys.executable, "manage.py", "check"], cwd=ROOT, env=environment,
                          capture_output=True, text=True, check=False)


def test_bad_environment_values_are_reported_by_system_checks_not_tracebacks(tmp_path):
    result = run_check(tmp_path, DEBUG="maybe", PORT="eighty", DATABASE_URL="nonsense://")
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    for expected in ("annotation_site.E001", "DEBUG='maybe'", "PORT='eighty'", "DATABASE_URL='nonsense://'"):
        assert expected in result.stderr


def test_a_good_environment_passes_the_checks(tmp_path):
    result = run_check(tmp_path, DEBUG="false", PORT="8123")
    assert result.returncode == 0, result.stderr


def test_the_secret_key_is_generated_once_into_data_dir_and_kept_private(tmp_path):
    run_check(tmp_path)
    key_file = tmp_path / "secret_key"
    first = key_file.read_text()
    run_check(tmp_path)
    assert key_file.read_text() == first and len(first) >= 50
    assert oct(key_file.stat().st_mode & 0o777) == "0o600"
