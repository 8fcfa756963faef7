# Shared by .ci/smoke.sh (embedded PostgreSQL) and .ci/smoke-sqlite.sh: run dist/main.js from an empty
# directory as `npm start` would, stop it with SIGTERM, and run the README's curl walk-through.
# Source it after `set -euo pipefail`; it sets REPO, WORK, PORT, BASE and cleans WORK up on exit.
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
WORK="$(mktemp -d)"
chmod 755 "$WORK" # the embedded PostgreSQL runs as the `postgres` user when we are root
PORT=3000 # the README's walk-through talks to localhost:3000
BASE="http://127.0.0.1:$PORT"
APP_PID=""
cleanup() { [ -n "$APP_PID" ] && kill -TERM "$APP_PID" 2>/dev/null; wait 2>/dev/null || true; rm -rf "$WORK"; }
trap cleanup EXIT
fail() { echo "SMOKE FAILED: $*"; echo "--- app log"; cat "$WORK"/app*.log 2>/dev/null || true; exit 1; }

# As `npm start` runs it: with the heap flags from package.json (config.node_flags), so a flag node
# rejects fails here. (npm itself is left out: `sh -c` would not pass SIGTERM on to node.)
NODE_FLAGS="$(node -p "require('$REPO/package.json').config.node_flags")"

start_app() { # $1: log name; the rest: env(1) arguments for the app, e.g. -u DATABASE_URL or NAME=value
  local log="$1"
  shift
  # shellcheck disable=SC2086 # the flags are words
  (cd "$WORK" && exec env "$@" node $NODE_FLAGS "$REPO/dist/main.js") >"$WORK/$log.log" 2>&1 &
  APP_PID=$!
  local started=$SECONDS
  until [ "$(curl -s -o /dev/null -w '%{http_code}' "$BASE/health/ready")" = 200 ]; do
    kill -0 "$APP_PID" 2>/dev/null || fail "the app exited during startup"
    [ $((SECONDS - started)) -lt 60 ] || fail "/health/ready not 200 after 60 s"
    sleep 0.2
  done
  echo "ready after $((SECONDS - started)) s"
}

stop_app() {
  kill -TERM "$APP_PID"
  local rc=0
  wait "$APP_PID" || rc=$?
  APP_PID=""
  [ "$rc" = 0 ] || fail "exit code $rc after SIGTERM, expected 0"
  echo "stopped with exit code 0"
}

# The README's curl walk-through, verbatim, twice: ids come from the responses, so it works on a
# database that already has data, and again.
readme_walkthrough() {
  awk '/^Try it against `npm start`/{f=1} f&&/^```bash/{g=1;next} g&&/^```/{exit} g' "$REPO/README.md" >"$WORK/walk.sh"
  for run in 1 2; do
    (cd "$WORK" && bash -eu "$WORK/walk.sh") >"$WORK/walk.out" 2>&1 || fail "README walk-through, run $run: $(cat "$WORK/walk.out")"
    for expected in '"status":412' '"status":409' '"status":400' 'rel="next"' '"message":"User deleted"'; do
      grep -qF "$expected" "$WORK/walk.out" || fail "README walk-through, run $run: no $expected in $(cat "$WORK/walk.out")"
    done
  done
  echo "README walk-through ran twice"
}
