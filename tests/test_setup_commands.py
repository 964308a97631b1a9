"""The README's two commands are the ones CI runs."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def readme_commands() -> list[str]:
    section = ROOT.joinpath("README.md").read_text().split("## Quick start", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"^\s*(\./\S+\.sh)\s*$", section, flags=re.MULTILINE)


def test_the_readme_gives_exactly_a_run_and_a_test_command():
    assert readme_commands() == ["./run.sh", "./test.sh"]


def test_ci_runs_the_readme_test_command():
    ci = ROOT.joinpath(".ci/run").read_text()
    assert re.search(r"^\s*(\S*/)?\./test\.sh\b", ci, flags=re.MULTILINE) or "./test.sh" in ci
    assert all(ROOT.joinpath(cmd).stat().st_mode & 0o111 for cmd in readme_commands())
