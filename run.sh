#!/usr/bin/env bash
# Runs the product: sets itself up, then serves the console until Ctrl-C.
set -euo pipefail
cd "$(dirname "$0")"
source scripts/bootstrap.sh
exec .venv/bin/python -m annotation_site.launcher "$@"
