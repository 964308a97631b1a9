#!/usr/bin/env bash
# Soak the tests that start real processes: N runs in a row on each database, with two CPU-burning loops beside
# them (a busy CI machine), and a pass count at the end. A failed run keeps its output in $SOAK_DIR.
#   scripts/soak.sh [N] [extra pytest arguments]
#   SOAK_DATABASES="sqlite postgres" (default both), CI_POSTGRES_URL (default postgres://postgres@127.0.0.1:5432/test)
# On PostgreSQL it runs what .ci/run runs there (-m "slow and postgres"); on SQLite every slow test (-m slow); each
# as ./test.sh runs them: a file per pytest-xdist process, TEST_PROCESSES of them (default one per core).
set -uo pipefail
cd "$(dirname "$0")/.."
runs=${1:-10}
shift || true
SOAK_DIR=${SOAK_DIR:-$(mktemp -d -t soak-XXXXXX)}
mkdir -p "$SOAK_DIR"
PG_URL=${CI_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/test}
EXTRA_REQUIREMENTS=requirements-local-llm.txt source scripts/bootstrap.sh

burners=()
for _ in 1 2; do
  ( while :; do :; done ) &
  burners+=($!)
done
trap 'kill "${burners[@]}" 2>/dev/null' EXIT

summary=()
for database in ${SOAK_DATABASES:-sqlite postgres}; do
  if [ "$database" = postgres ]; then
    env=(DATABASE_URL="$PG_URL") markers="slow and postgres"
  else
    env=() markers="slow"
  fi
  passed=0
  for run in $(seq 1 "$runs"); do
    log="$SOAK_DIR/$database-$run.log"
    started=$SECONDS
    if env "${env[@]}" .venv/bin/python -m pytest -p no:cacheprovider -q -m "$markers" \
        -n "${TEST_PROCESSES:-auto}" --dist loadfile "$@" >"$log" 2>&1; then
      passed=$((passed + 1))
      result=passed
    else
      result="FAILED (see $log)"
    fi
    echo "[soak] $database run $run of $runs: $result in $((SECONDS - started)) s — $(tail -n 1 "$log")"
  done
  summary+=("$database: $passed of $runs passed")
done
echo "[soak] with two CPU-burning loops beside the tests:"
printf '[soak] %s\n' "${summary[@]}"
