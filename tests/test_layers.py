"""The dependency rules of tests/layering.py hold for the code, and would catch a new violation."""

from __future__ import annotations

import shutil
from pathlib import Path

from tests.layering import PACKAGES, ROOT, cycles, import_edges, module_files, violations

# Imports inside functions only where Django is not set up yet when the module loads: the launcher sets it up
# itself, and each AppConfig wires its checks and receivers in ready().
LOCAL_IMPORTS_ALLOWED = {"annotation_site.launcher", "annotation_site.apps", "audit.apps", "workers_app.apps",
                         "admin_ops.apps", "api.apps"}


def _tree_copy(tmp_path: Path) -> Path:
    for package in PACKAGES:
        shutil.copytree(ROOT / package, tmp_path / package, ignore=shutil.ignore_patterns("__pycache__"))
    return tmp_path


def test_no_module_imports_from_a_higher_layer():
    assert violations(import_edges(module_files())) == []


def test_no_modules_import_each_other_round_about():
    assert cycles(import_edges(module_files())) == []


def test_imports_inside_functions_are_only_where_django_is_not_ready_yet():
    local = {(e.source, e.target) for e in import_edges(module_files()) if e.local}
    assert {source for source, _ in local} <= LOCAL_IMPORTS_ALLOWED, sorted(local)


def test_it_reports_a_deliberate_upward_import(tmp_path):
    root = _tree_copy(tmp_path)
    with (root / "workers_app/engine/keys.py").open("a") as handle:
        handle.write("\nfrom admin_ops.services.reset import preview_reset  # noqa\n")

    found = violations(import_edges(module_files(root)))

    assert found == ["workers_app.engine.keys (engine) -> admin_ops.services.reset (admin_ops): an upward import"]


def test_it_reports_the_audit_app_importing_one_of_ours(tmp_path):
    root = _tree_copy(tmp_path)
    with (root / "audit/services.py").open("a") as handle:
        handle.write("\ndef _late():\n    from annotation_site.files import atomic_write  # noqa\n")

    found = violations(import_edges(module_files(root)))

    assert found == ["audit.services -> annotation_site.files: the audit app imports none of ours"]


def test_it_reports_a_cycle_closed_inside_a_function(tmp_path):
    root = _tree_copy(tmp_path)
    with (root / "workers_app/fleet/rows.py").open("a") as handle:
        handle.write("\ndef _late():\n    from workers_app.fleet import services  # noqa\n")

    found = cycles(import_edges(module_files(root)))

    assert any({"workers_app.fleet.rows", "workers_app.fleet.services"} <= set(cycle) for cycle in found)
