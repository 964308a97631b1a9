"""Shared set-up for benchmarks: a throwaway DATA_DIR, SQLite database and private Redis."""

from __future__ import annotations

import atexit
import os
import shutil
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATASETS = ROOT.parent / "shared" / "datasets"
sys.path.insert(0, str(ROOT))


def isolated_django(**env: str) -> Path:
    """Point Django at a fresh DATA_DIR and a private Redis, migrate and seed; return the DATA_DIR."""
    from annotation_site.redis_service import start_private

    data_dir = Path(tempfile.mkdtemp(prefix="annotation-bench-"))
    redis_service = start_private(data_dir / "redis", persist=False)
    atexit.register(lambda: (redis_service.stop(), shutil.rmtree(data_dir, ignore_errors=True)))
    os.environ.update({"DATA_DIR": str(data_dir), "REDIS_URL": redis_service.url,
                       "DJANGO_SETTINGS_MODULE": "annotation_site.settings", **env})
    os.environ.pop("DATABASE_URL", None)
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    call_command("seed_defaults", verbosity=0)
    return data_dir


def import_posts(limit: int | None = None) -> int:
    from workers_app.importing.service import import_corpus
    from workers_app.models import Sample

    import_corpus(DATASETS / "mh_posts_1871.xlsx", actor="bench")
    if limit is not None:
        Sample.objects.filter(pk__in=Sample.objects.order_by("pk").values("pk")[limit:]).delete()
    return Sample.objects.count()


def worker_env() -> dict[str, str]:
    return {**os.environ, "DATABASE_URL": f"sqlite:///{os.environ['DATA_DIR']}/db.sqlite3"}
