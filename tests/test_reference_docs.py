"""The reference pages (docs/reference/) are what the code says: `manage.py reference_docs --check` passes on the
committed pages, fails naming the stale page when one differs, and every environment variable the product reads and
every management command of ours is on its page."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.management import call_command, get_commands
from django.core.management.base import CommandError

from admin_ops.management.reference_docs import OUR_APPS, PAGES, reference_dir

ROOT = Path(__file__).resolve().parents[1]
# A variable named in product code: os.environ.get("X"), os.environ["X"], "X" in os.environ, env_int("X", ...).
READS = re.compile(r"""(?:os\.environ(?:\.get)?[\[(]|env_(?:str|bool|int|list)\(|_api_rate\(|_networks\(|
                       document_env\()\s*"([A-Z][A-Z0-9_]+)"|"([A-Z][A-Z0-9_]+)"\s+in\s+os\.environ""", re.VERBOSE)
# Read by the product but not settings: how Django finds its settings.
NOT_SETTINGS = {"DJANGO_SETTINGS_MODULE"}


def test_the_committed_reference_pages_match_the_code():
    call_command("reference_docs", "--check")


def test_check_names_the_stale_page_and_changes_nothing(tmp_path):
    call_command("reference_docs", "--dir", str(tmp_path))
    assert sorted(path.name for path in tmp_path.iterdir()) == sorted(PAGES)
    settings_page = tmp_path / "settings.md"
    hand_edited = settings_page.read_text().replace("| `PORT` | 8000 |", "| `PORT` | 8080 |")
    settings_page.write_text(hand_edited)
    (tmp_path / "openapi.yaml").unlink()

    with pytest.raises(CommandError) as refused:
        call_command("reference_docs", "--check", "--dir", str(tmp_path))

    message = str(refused.value)
    assert "settings.md" in message and "openapi.yaml" in message and "commands.md" not in message
    assert settings_page.read_text() == hand_edited  # --check writes nothing
    assert not (tmp_path / "openapi.yaml").exists()


def test_the_check_exits_non_zero_from_the_command_line(tmp_path):
    stale = tmp_path / "pages"
    stale.mkdir()
    (stale / "commands.md").write_text("# Management commands\n\nfrom memory\n")
    environment = {**os.environ, "DJANGO_SETTINGS_MODULE": "annotation_site.settings",
                   "DATA_DIR": str(tmp_path / "data")}
    done = subprocess.run([sys.executable, "manage.py", "reference_docs", "--check", "--dir", str(stale)], cwd=ROOT,
                          env=environment, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode != 0
    assert "stale" in done.stderr and "commands.md" in done.stderr
    assert (stale / "commands.md").read_text() == "# Management commands\n\nfrom memory\n"


def test_every_variable_the_product_reads_is_on_the_settings_page_with_a_meaning():
    page = (reference_dir() / "settings.md").read_text()
    rows = {match.group(1): match.group(2) for match in
            re.finditer(r"^\| `([A-Z0-9_]+)` \|.*\| ([^|]*) \|$", page, flags=re.MULTILINE)}
    read = set()
    for package in OUR_APPS:
        for path in (ROOT / package).rglob("*.py"):
            read |= {first or second for first, second in READS.findall(path.read_text())}
    assert read - NOT_SETTINGS, "the scan found no variables: is the pattern still right?"
    assert sorted(read - NOT_SETTINGS - set(rows)) == []
    assert [name for name, meaning in rows.items() if meaning.strip() in ("", "—")] == []


def test_every_management_command_of_ours_is_on_the_commands_page():
    page = (reference_dir() / "commands.md").read_text()
    ours = sorted(name for name, app in get_commands().items() if app in OUR_APPS)
    assert "reference_docs" in ours
    assert [name for name in ours if f"## `{name}` (" not in page] == []
