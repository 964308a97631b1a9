"""What every hostile-input case asserts besides its error: nothing changed, and a refused action is audited.

``unchanged`` fingerprints the store (every table of ours but the audit log), the files under DATA_DIR (but the
audit mirror, logs and the database itself) and the keys of Redis; calling it compares with the fingerprint taken
when the test asked for the fixture.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable

import pytest
from django.apps import apps
from django.conf import settings

SKIPPED_FILES = ("admin_audit.log", "secret_key", "field_encryption_key")
# The databases and their journals; under pytest-xdist the test database is test_db.sqlite3_gw<N>.
DATABASE_FILE = re.compile(r"(test_)?db\.sqlite3(_gw\d+)?(-wal|-shm|-journal)?")
SKIPPED_FOLDERS = ("redis", "logs", "static")


def _tables() -> dict[str, str]:
    found = {}
    for model in apps.get_models():
        app = model._meta.app_label
        if app not in ("workers_app", "admin_ops", "django_celery_beat", "auth") or not model._meta.managed \
                or model._meta.proxy:
            continue
        rows = list(model.objects.order_by("pk").values())
        found[model._meta.label] = hashlib.sha256(json.dumps(rows, default=str).encode()).hexdigest()
    return found


def _files() -> dict[str, str]:
    found = {}
    for path in sorted(settings.DATA_DIR.rglob("*")):
        relative = path.relative_to(settings.DATA_DIR)
        if path.is_dir() or relative.parts[0] in SKIPPED_FOLDERS or path.name in SKIPPED_FILES \
                or DATABASE_FILE.fullmatch(path.name):
            continue
        found[str(relative)] = hashlib.sha256(path.read_bytes()).hexdigest()
    return found


def _redis_keys() -> list[str]:
    from workers_app.redis_client import get_redis

    return sorted(get_redis().keys("*"))


def fingerprint() -> dict:
    return {"tables": _tables(), "files": _files(), "redis": _redis_keys()}


@pytest.fixture
def unchanged() -> Callable[[], None]:
    before = fingerprint()

    def check() -> None:
        after = fingerprint()
        changed = {part: sorted(set(after[part]) ^ set(before[part])) if isinstance(after[part], list)
                   else sorted(k for k in after[part].keys() | before[part].keys()
                               if after[part].get(k) != before[part].get(k))
                   for part in after}
        assert after == before, f"the hostile input changed something: {changed}"

    return check


def assert_failed_audit(action: str, *, mentioning: str = "") -> None:
    """The attempt left a ``failed`` audit row for ``action`` whose error mentions ``mentioning``."""
    from audit.models import AuditLog

    rows = AuditLog.objects.filter(action=action, result=AuditLog.Result.FAILED)
    assert rows.exists(), f"no failed audit row for {action}"
    if mentioning:
        assert any(mentioning in json.dumps(row.detail) for row in rows), \
            f"no failed {action} row mentions {mentioning!r}: {[r.detail for r in rows]}"
