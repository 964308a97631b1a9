#!/usr/bin/env bash
# Runs the whole test suite against a private Redis and a private DATA_DIR (see tests/settings.py).
set -euo pipefail
cd "$(dirname "$0")"
EXTRA_REQUIREMENTS=requirements-local-llm.txt
source scripts/bootstrap.sh
exec .venv/bin/python -m pytest "$@"
