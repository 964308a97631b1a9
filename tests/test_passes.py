"""Every test file is in exactly one pass of tests/passes.py, so a new file cannot drop out of CI by mistake."""

from __future__ import annotations

from pathlib import Path

from tests.passes import ONCE, POSTGRES, SLOW

TESTS = Path(__file__).resolve().parent


def files_under(root: Path = TESTS) -> set[str]:
    return {path.relative_to(root.parent).as_posix() for path in root.rglob("test_*.py")}


def test_every_test_file_is_in_exactly_one_pass():
    files = files_under()
    assert sorted(files - POSTGRES - ONCE) == [], "add these to POSTGRES or ONCE in tests/passes.py"
    assert sorted(POSTGRES & ONCE) == [], "in both passes"
    assert sorted((POSTGRES | ONCE | SLOW) - files) == [], "listed in tests/passes.py but not there"


def test_a_new_file_in_neither_pass_is_named(tmp_path):
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "test_new_feature.py").write_text("def test_it(): pass\n")
    assert sorted(files_under(tmp_path / "tests") - POSTGRES - ONCE) == ["tests/test_new_feature.py"]
