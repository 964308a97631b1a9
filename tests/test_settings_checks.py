from __future__ import annotations

import subprocess
import sys

from tests.helpers import ROOT, fresh_product_env, run_check


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


def test_an_empty_secret_key_file_fails_the_checks_and_names_the_file(tmp_path):
    (tmp_path / "secret_key").write_text("  \n")
    result = run_check(tmp_path)
    assert result.returncode != 0 and "Traceback" not in result.stderr
    assert "secret key file is empty or too short" in result.stderr and str(tmp_path / "secret_key") in result.stderr


def test_data_dir_and_what_is_created_in_it_are_private_to_the_product_user(tmp_path):
    tmp_path.chmod(0o755)
    (tmp_path / "db.sqlite3").touch(mode=0o644)
    result = run_check(tmp_path)
    assert result.returncode == 0, result.stderr
    assert oct(tmp_path.stat().st_mode & 0o777) == "0o700"
    subprocess.run([sys.executable, "manage.py", "migrate", "-v", "0"], cwd=ROOT, env=fresh_product_env(tmp_path),
                   check=True)
    created = [p for p in tmp_path.rglob("*") if p.is_file() and p.name != "db.sqlite3"]
    assert created and all(p.stat().st_mode & 0o077 == 0 for p in created), \
        [(p.name, oct(p.stat().st_mode)) for p in created]
