"""Test settings: a private DATA_DIR and a private Redis server, so tests never touch the product's data.

TEST_REDIS_URL may name a Redis that tests may wipe; otherwise a private redis-server is started
on a free port for this run and stopped at exit. DATABASE_URL chooses SQLite (default) or PostgreSQL;
either way Django's own test database is used.
"""

import atexit
import os
import shutil
import tempfile
from pathlib import Path

from annotation_site.redis_service import start_private

_data_dir = Path(tempfile.mkdtemp(prefix="annotation-tests-"))
os.environ["DATA_DIR"] = str(_data_dir)
_redis = None
if os.environ.get("TEST_REDIS_URL"):
    os.environ["REDIS_URL"] = os.environ["TEST_REDIS_URL"]
else:
    _redis = start_private(_data_dir / "redis", persist=False)
    os.environ["REDIS_URL"] = _redis.url


@atexit.register
def _cleanup() -> None:
    if _redis is not None:
        _redis.stop()
    shutil.rmtree(_data_dir, ignore_errors=True)


from annotation_site.settings import *

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]  # fast logins in tests
# The fake LLM and webhook servers of the suite listen on loopback; the hostile tests override this to [].
OUTBOUND_ALLOW = ["127.0.0.0/8"]

if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    # A test database of this test process's own (pytest-xdist adds its _gwN to it), so that two runs against one
    # server (a soak beside a suite, two checkouts) never create or drop each other's.
    DATABASES["default"]["TEST"] = {"NAME": f"test_{DATABASES['default']['NAME']}_{os.getpid()}"}
