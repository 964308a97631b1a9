"""Benchmarks that cannot rot: every bench/*.py runs with --quick and writes its results, and the README's
performance table is exactly what bench/report.py makes of bench/results/*.json."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("bench_report", ROOT / "bench" / "report.py")
report = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(report)

# What names this suite's install (its DATA_DIR, Redis, database): a bench makes its own.
SUITE_ONLY = ("DJANGO_SETTINGS_MODULE", "DATA_DIR", "REDIS_URL", "TEST_REDIS_URL", "DATABASE_URL", "INSTALL_ID")


def bench_environment(results: Path) -> dict[str, str]:
    return {**{k: v for k, v in os.environ.items() if k not in SUITE_ONLY}, "BENCH_RESULTS": str(results)}


@pytest.mark.timeout(330)
@pytest.mark.parametrize("bench", report.bench_files(), ids=lambda path: path.stem)
def test_each_bench_runs_quick_and_writes_its_results(bench, tmp_path):
    done = subprocess.run([sys.executable, str(bench), "--quick"], cwd=ROOT, env=bench_environment(tmp_path),
                          capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, f"{bench.name} --quick exited {done.returncode}:\n{done.stderr[-4000:]}"
    written = json.loads((tmp_path / "quick" / f"{bench.stem}.json").read_text())
    assert written["quick"] is True and written["bench"] == bench.stem
    assert written["figures"], f"{bench.name} recorded no figure"
    assert {f["name"] for f in written["figures"]} <= set(report.declared_figures(bench))
    assert written["command"].endswith(f"{bench.name} --quick")
    assert {"cpus", "cpu_model", "python", "database"} <= set(written["machine"])
    for figure in written["figures"]:
        assert figure["repetitions"] == len(figure["values"]) >= 1
        assert figure["min"] <= figure["median"] <= figure["max"]
    assert not (tmp_path / f"{bench.stem}.json").exists(), "a quick run must not write the full results"


def test_the_readme_performance_table_is_what_the_results_give():
    done = subprocess.run([sys.executable, "bench/report.py", "--check"], cwd=ROOT, capture_output=True, text=True,
                          check=False)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr


def test_a_bench_without_results_is_shown_as_not_measured_yet(tmp_path):
    table = report.render(tmp_path)
    rows = [line for line in table.splitlines() if line.startswith("| `bench/")]
    declared = sum(len(report.declared_figures(path)) for path in report.bench_files())
    assert len(rows) == declared
    assert all(f"| {report.NOT_MEASURED} |" in row for row in rows)


def flush_results(**changes) -> dict:
    figure = {"name": "flush_20000", "about": "the same into a workbook of 20,000 rows", "unit": "s",
              "median": 0.05, "min": 0.04, "max": 0.31, "repetitions": 7, "values": [0.05] * 7, "goal": "<= 0.2",
              "baseline": {"about": "openpyxl reload + append + save", "median": 14.9, "min": 14.1, "max": 15.2,
                           "repetitions": 3, "values": [14.9] * 3}}
    return {"bench": "flush", "quick": False, "commit": "0123456789abcdef", "uncommitted_changes": False,
            "date": "2026-12-06T10:00:00+00:00", "seconds": 250.0, "command": ".venv/bin/python bench/flush.py",
            "machine": {"cpus": 2, "cpu_model": "AMD EPYC", "python": "3.11.7", "database": "none"},
            "load_average": {"before": 0.2, "after": 1.1}, "figures": [{**figure, **changes}]}


def test_a_measured_figure_shows_its_median_spread_repetitions_baseline_goal_and_date(tmp_path):
    (tmp_path / "flush.json").write_text(json.dumps(flush_results()))
    table = report.render(tmp_path)
    [row] = [line for line in table.splitlines() if "workbook of 20,000 rows" in line]
    assert "| 0.05 s (median; 0.04–0.31, n = 7) |" in row
    assert "| openpyxl reload + append + save: 14.9 s (median; 14.1–15.2, n = 3) |" in row
    assert "| ≤ 0.2 s (met) | 2026-12-06, 0123456 |" in row
    assert "`.venv/bin/python bench/flush.py` on 2 × AMD EPYC" in table
    # The other flush figures were not in that file.
    assert sum(f"| {report.NOT_MEASURED} |" in line for line in table.splitlines() if "bench/flush.py" in line) == 2


def test_a_missed_goal_is_said_plainly(tmp_path):
    (tmp_path / "flush.json").write_text(json.dumps(flush_results(median=0.25)))
    assert "≤ 0.2 s (**not met**)" in report.render(tmp_path)


def test_a_figure_the_bench_does_not_declare_is_refused(tmp_path):
    (tmp_path / "flush.json").write_text(json.dumps(flush_results(name="flush_renamed")))
    with pytest.raises(report.ReportError, match="flush_renamed"):
        report.render(tmp_path)


def test_quick_results_are_never_shown(tmp_path):
    (tmp_path / "flush.json").write_text(json.dumps({**flush_results(), "quick": True}))
    with pytest.raises(report.ReportError, match="quick"):
        report.render(tmp_path)


def test_check_fails_on_a_stale_table_and_the_rewrite_fixes_it(tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text(f"# Title\n\nprose\n\n{report.START}\n| old | hand-typed 1.0 s |\n{report.END}\n\nmore prose\n")
    command = [sys.executable, "bench/report.py", "--readme", str(readme), "--results", str(tmp_path / "none")]
    stale = subprocess.run([*command, "--check"], cwd=ROOT, capture_output=True, text=True, check=False)
    assert stale.returncode == 1 and "hand-typed" in stale.stdout
    subprocess.run(command, cwd=ROOT, check=True, capture_output=True)
    text = readme.read_text()
    assert text.startswith("# Title\n\nprose\n\n") and text.endswith("\n\nmore prose\n")
    assert "hand-typed" not in text and report.NOT_MEASURED in text
    assert subprocess.run([*command, "--check"], cwd=ROOT, capture_output=True, check=False).returncode == 0


def test_a_readme_without_the_markers_is_an_error(tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text("# no table here\n")
    done = subprocess.run([sys.executable, "bench/report.py", "--check", "--readme", str(readme)], cwd=ROOT,
                          capture_output=True, text=True, check=False)
    assert done.returncode == 2 and "perf:start" in done.stderr
