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
# llama.cpp's default native build (-march=native) trapped with "invalid opcode" on a VM that lists AVX-512 and AMX
# among its CPU flags; a portable AVX2 build runs there and on any x86-64 machine with AVX2.
export CMAKE_ARGS="${CMAKE_ARGS:--DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON}"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$wanted" ]; then
  echo "[setup] installing dependencies (the first time takes a minute or two; llama.cpp adds about 8) …"
  for file in $files; do
    .venv/bin/python -m pip install --quiet --disable-pip-version-check -r "$file"
  done
  echo "$wanted" > "$stamp"
fi
