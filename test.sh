#!/usr/bin/env bash
# The test suite, against a private Redis and a private DATA_DIR (see tests/settings.py): it never touches the data
# of a running product.
#   ./test.sh           the whole suite: the quick tests in parallel (pytest-xdist, one process per core), then the
#                       tests that start real processes (tests/passes.py says which), a file per process
#   ./test.sh ARGS...   pytest with these arguments in one process (./test.sh -k import -x, ./test.sh -m "not slow")
# TEST_MARKERS narrows the whole suite to a marker expression: .ci/run's PostgreSQL pass sets it to "postgres".
set -euo pipefail
cd "$(dirname "$0")"
EXTRA_REQUIREMENTS=requirements-local-llm.txt
source scripts/bootstrap.sh
# The browser tests drive Debian's Chromium; install it where it is missing and we may (root with apt-get).
if ! command -v chromedriver >/dev/null 2>&1 && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "[setup] installing chromium and chromium-driver for the browser tests …"
  apt-get install -y -qq chromium chromium-driver >/dev/null
fi
if [ "$#" -gt 0 ]; then
  exec .venv/bin/python -m pytest "$@"
fi
if [ -n "${TEST_MARKERS:-}" ]; then
  quick="(${TEST_MARKERS}) and not slow" slow="(${TEST_MARKERS}) and slow"
else
  quick="not slow" slow="slow"
fi
started=$SECONDS
status=0
echo "== the quick tests, in parallel (-m \"$quick\")"
.venv/bin/python -m pytest -m "$quick" -n "${TEST_PROCESSES:-auto}" --durations=15 || status=$?
# Real-process tests mostly wait (for workers, windows, a model's answer): two files side by side (each pytest-xdist
# process has its own Redis, DATA_DIR and test database) take about 60 % of the serial time on 2 cores. A file
# stays in one process, so its fixtures and ordering hold as written.
echo "== the tests that start real processes, a file per process (-m \"$slow\")"
.venv/bin/python -m pytest -m "$slow" -n "${TEST_PROCESSES:-auto}" --dist loadfile --durations=30 || status=$?
echo "== test suite: $((SECONDS - started)) s, exit status $status"
exit "$status"
