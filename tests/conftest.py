from __future__ import annotations

from pathlib import Path

import pytest

from tests.passes import POSTGRES, SLOW


@pytest.fixture
def staff(django_user_model):
    return django_user_model.objects.create_superuser("staff", password="pw-for-tests")


@pytest.fixture
def catalogue(db):
    from workers_app.catalogue_defaults import seed_defaults

    seed_defaults(actor="test")


@pytest.fixture(autouse=True)
def clean_redis():
    """Each test starts with an empty (private) Redis."""
    from workers_app.redis_client import get_redis

    get_redis().flushdb()


@pytest.fixture(autouse=True)
def clean_annotations_dir():
    """Workbooks of one test must not meet the (flushed) database of the next."""
    import shutil

    from django.conf import settings

    shutil.rmtree(settings.ANNOTATIONS_DIR, ignore_errors=True)
    shutil.rmtree(settings.DATA_DIR / "runs", ignore_errors=True)


@pytest.fixture(autouse=True)
def fresh_catalogue_cache():
    """The caches of rows a test's rolled-back database may give again under the same ids (runs, catalogue rows,
    price versions), each kept for a second or two per process: a test must not read the one before it's."""
    from workers_app.engine.catalogue_cache import forget_cached_rows
    from workers_app.engine.cost import forget_cached_prices
    from workers_app.runs.current import forget_cached_runs

    forget_cached_runs()
    forget_cached_rows()
    forget_cached_prices()


@pytest.fixture
def agent(catalogue):
    """A real fleet agent whose built-in annotators answer in 20 ms; every worker is stopped afterwards."""
    from tests.worker_processes import running_agent
    from workers_app.models import Annotator

    Annotator.objects.update(builtin_latency_ms=20)
    with running_agent() as process:
        yield process


@pytest.fixture
def fake_llm():
    from tests.fake_llm import serving_fake_llm

    with serving_fake_llm() as fake:
        yield fake


@pytest.fixture
def http_annotator(catalogue, fake_llm):
    from workers_app.models import Annotator

    annotator = Annotator.objects.get(number=1)
    annotator.backend = Annotator.Backend.OPENAI_COMPATIBLE
    annotator.base_url = fake_llm.url
    annotator.model = "fake-model"
    annotator.max_retries = 2
    annotator.timeout_seconds = 1.0
    annotator.save()
    return annotator


def pytest_collection_modifyitems(config, items):
    """Markers from tests/passes.py: ``postgres`` (also runs on PostgreSQL) and ``slow`` (starts real processes)."""
    root = Path(str(config.rootpath))
    for item in items:
        name = Path(str(item.path)).relative_to(root).as_posix()
        if name in POSTGRES:
            item.add_marker(pytest.mark.postgres)
        if name in SLOW:
            item.add_marker(pytest.mark.slow)
