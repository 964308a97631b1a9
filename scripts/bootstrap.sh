# Sourced by run.sh and test.sh: make sure .venv exists and holds requirements.txt.
set -euo pipefail
PYTHON=${PYTHON:-python3}
if ! "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
  echo "Python 3.11 or newer is needed (tried '$PYTHON'; set PYTHON=/path/to/python3.11)." >&2
  exit 2
fi
if [ ! -x .venv/bin/python ]; then
  echo "[setup] creating the virtual environment in .venv …"
  "$PYTHON" -m venv .venv
fi
# EXTRA_REQUIREMENTS names more requirement files (test.sh adds the local model's, which compiles llama.cpp).
files="requirements.txt ${EXTRA_REQUIREMENTS:-}"
stamp=.venv/.requirements.sha256
wanted=$(cat $files | sha256sum | cut -d' ' -f1)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$wanted" ]; then
  echo "[setup] installing dependencies (the first time takes a minute or two; llama.cpp adds about 8) …"
  for file in $files; do
    .venv/bin/python -m pip install --quiet --disable-pip-version-check -r "$file"
  done
  echo "$wanted" > "$stamp"
fi
