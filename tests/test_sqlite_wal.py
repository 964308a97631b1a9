"""On SQLite a large write leaves the write-ahead log (WAL) as large as the write until a checkpoint resets it, and
a file that large stays on disk while any process keeps the database open (the web server, the workers): a 952 MB
corpus left a 1 GB WAL beside the 1 GB database. After a large write the product checkpoints the WAL back to
nothing, and every connection caps what a reset WAL keeps (journal_size_limit)."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
from django.db import connection

from workers_app.importing.service import import_corpus
from workers_app.models import Sample

pytestmark = [pytest.mark.django_db(transaction=True),
              pytest.mark.skipif(connection.vendor != "sqlite", reason="the WAL is SQLite's")]

POSTS = 3_000
TEXT = "I have not slept properly for weeks and the exams start on Monday. " * 45  # ~3 KB a post


def wal_bytes() -> int:
    wal = Path(f"{connection.settings_dict['NAME']}-wal")
    return wal.stat().st_size if wal.exists() else 0


def test_a_large_import_leaves_no_large_wal_behind(tmp_path):
    source = tmp_path / "large.csv"
    with source.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["ID", "Text"])
        writer.writerows([f"P-{n}", f"{TEXT} (#{n})"] for n in range(POSTS))
    assert source.stat().st_size > 8 * 2**20

    report = import_corpus(source, actor="test")

    assert report.imported == POSTS and Sample.objects.count() == POSTS
    assert wal_bytes() < 2**20, f"the WAL holds {wal_bytes() / 2**20:.1f} MiB after the import"


def test_every_connection_caps_what_a_reset_wal_keeps():
    with connection.cursor() as cursor:
        cursor.execute("PRAGMA journal_size_limit")
        assert 0 < cursor.fetchone()[0] <= 64 * 2**20
