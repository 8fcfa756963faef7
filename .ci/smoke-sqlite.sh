#!/usr/bin/env bash
# The built app on a SQLite file (DATABASE_URL=sqlite:./.data/app.db, as the README says): it starts,
# the README's curl walk-through passes twice, SIGTERM exits 0, and a restart finds the data.
# Needs better-sqlite3 (npm run drivers).
set -euo pipefail
REPO="$(cd "$(dirname "$0")/.." && pwd)"
WORK="$(mktemp -d)"
PORT=3000
BASE="http://127.0.0.1:$PORT"
APP_PID=""
cleanup() { [ -n "$APP_PID" ] && kill -TERM "$APP_PID" 2>/dev/null; wait 2>/dev/null || true; rm -rf "$WORK"; }
trap cleanup EXIT
fail() { echo "SQLITE SMOKE FAILED: $*"; echo "--- app log"; cat "$WORK"/app*.log 2>/dev/null || true; exit 1; }

start_app() { # $1: log name
  (cd "$WORK" && exec env DATABASE_URL=sqlite:./.data/app.db JWT_SECRET=sqlite-smoke-secret-of-at-least-32-chars \
    node "$REPO/dist/main.js") >"$WORK/$1.log" 2>&1 &
  APP_PID=$!
  local started=$SECONDS
  until [ "$(curl -s -o /dev/null -w '%{http_code}' "$BASE/health/ready")" = 200 ]; do
    kill -0 "$APP_PID" 2>/dev/null || fail "the app exited during startup"
    [ $((SECONDS - started)) -lt 60 ] || fail "/health/ready not 200 after 60 s"
    sleep 0.2
  done
}
stop_app() {
  kill -TERM "$APP_PID"
  local rc=0
  wait "$APP_PID" || rc=$?
  APP_PID=""
  [ "$rc" = 0 ] || fail "exit code $rc after SIGTERM, expected 0"
}

start_app app1
[ -s "$WORK/.data/app.db" ] || fail "no database file at ./.data/app.db"
# The README's walk-through, verbatim (as .ci/smoke.sh runs it on PostgreSQL).
awk '/^Try it against `npm start`/{f=1} f&&/^```bash/{g=1;next} g&&/^```/{exit} g' "$REPO/README.md" >"$WORK/walk.sh"
for run in 1 2; do
  (cd "$WORK" && bash -eu "$WORK/walk.sh") >"$WORK/walk.out" 2>&1 || fail "README walk-through, run $run: $(cat "$WORK/walk.out")"
  for expected in '"status":409' '"status":400' 'rel="next"' '"message":"User deleted"'; do
    grep -qF "$expected" "$WORK/walk.out" || fail "README walk-through, run $run: no $expected in $(cat "$WORK/walk.out")"
  done
done
echo "README walk-through ran twice on SQLite"
code=$(curl -s -o /dev/null -w '%{http_code}' -H 'Content-Type: application/json' \
  -d '{"name":"Kept","email":"kept@example.com","password":"sqlite smoke password"}' "$BASE/users")
[ "$code" = 201 ] || fail "POST /users answered $code"
stop_app
start_app app2
curl -s "$BASE/users?limit=100" | grep -q '"name":"Kept"' || fail "the user is gone after a restart"
stop_app
echo "SQLite smoke passed: walk-through twice, SIGTERM exit 0, data kept across a restart"
