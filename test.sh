#!/usr/bin/env bash
# Runs the whole test suite against a private Redis and a private DATA_DIR (see tests/settings.py).
set -euo pipefail
cd "$(dirname "$0")"
EXTRA_REQUIREMENTS=requirements-local-llm.txt
source scripts/bootstrap.sh
# The browser tests drive Debian's Chromium; install it where it is missing and we may (root with apt-get).
if ! command -v chromedriver >/dev/null 2>&1 && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "[setup] installing chromium and chromium-driver for the browser tests …"
  apt-get install -y -qq chromium chromium-driver >/dev/null
fi
exec .venv/bin/python -m pytest "$@"
