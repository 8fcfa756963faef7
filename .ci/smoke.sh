#!/usr/bin/env bash
# Starts dist/main.js from an empty directory with no configuration at all (embedded PostgreSQL in
# ./.data), writes a user, checks a second instance is refused, stops with SIGTERM (exit 0), starts
# again and finds the user.
set -euo pipefail
# shellcheck source=smoke-lib.sh
source "$(dirname "$0")/smoke-lib.sh"

# Bad configuration fails fast: one line naming the problem, a non-zero exit, no stack trace.
for bad in "DB_POOL_SIZE=abc" "DATABASE_URL=postgres://nobody:secret@127.0.0.1:1/none" "NODE_ENV=production"; do
  # An unreachable database is retried (one line per attempt) up to DB_STARTUP_TIMEOUT_MS, then one line.
  if (cd "$WORK" && env "$bad" DB_STARTUP_TIMEOUT_MS=3000 PORT=3998 timeout 30 node "$REPO/dist/main.js") >"$WORK/bad.log" 2>&1; then fail "started with $bad"; fi
  grep -v '^Database not available yet (attempt [0-9]*: ' "$WORK/bad.log" >"$WORK/bad-final.log" || true
  [ "$(wc -l <"$WORK/bad-final.log")" -eq 1 ] || fail "more than one line besides the retries for $bad: $(cat "$WORK/bad.log")"
  grep -q "secret" "$WORK/bad.log" && fail "the password leaked: $(cat "$WORK/bad.log")"
  echo "refused $bad: $(cat "$WORK/bad-final.log")"
done

start_app app1 -u DATABASE_URL
code=$(curl -s -o "$WORK/created.json" -w '%{http_code}' -H 'Content-Type: application/json' \
  -d '{"name":"Smoke","email":"smoke@example.com","password":"smoke test password","profile":{"bio":"kept across restarts"}}' "$BASE/users")
[ "$code" = 201 ] || fail "POST /users answered $code"
USER_ID=$(node -p "require('$WORK/created.json').id")
curl -sf -H 'Content-Type: application/json' -d '{"email":"smoke@example.com","password":"smoke test password"}' \
  "$BASE/auth/login" >"$WORK/login.json" || fail "POST /auth/login failed"
TOKEN=$(node -p "require('$WORK/login.json').accessToken")
[ -s "$WORK/.data/postgres.jwt-secret" ] || fail "no JWT secret generated next to the embedded database"

# The startup log: one format from the first line (pino, no colour codes in a file); it names the
# migrations applied, where the API docs are, and how to stop.
grep -vqE '^\[[0-9:.]{12}\] [A-Z]+ \(' "$WORK/app1.log" && fail "a startup line not in pino's format: $(grep -vE '^\[[0-9:.]{12}\] [A-Z]+ \(' "$WORK/app1.log" | head -1)"
grep -q $'\e\[' "$WORK/app1.log" && fail "colour codes in a log written to a file"
grep -q "Applied migration InitialSchema" "$WORK/app1.log" || fail "the startup log does not name the migrations applied"
grep -q "Listening on http://127.0.0.1:$PORT (this machine only" "$WORK/app1.log" || fail "the startup log does not say it listens on loopback only (no DATABASE_URL, no HOST)"
grep -q "API docs at http://127.0.0.1:$PORT/docs" "$WORK/app1.log" || fail "the startup log does not say where the API docs are"
grep -q "Stop with Ctrl-C" "$WORK/app1.log" || fail "the startup log does not say how to stop"
echo "startup log: $(grep -c . "$WORK/app1.log") lines, one format"

readme_walkthrough

# A second instance on the same data directory must refuse, not corrupt it.
if (cd "$WORK" && PORT=3999 node "$REPO/dist/main.js") >"$WORK/second.log" 2>&1; then fail "a second instance started"; fi
grep -q "already running" "$WORK/second.log" || fail "the second instance did not say why: $(cat "$WORK/second.log")"
echo "second instance refused: $(cat "$WORK/second.log")"

stop_app
pgrep -f "$WORK/.data/postgres" >/dev/null && fail "embedded PostgreSQL still running after shutdown"

start_app app2 -u DATABASE_URL
curl -sf "$BASE/users/$USER_ID" | grep -q "kept across restarts" || fail "user $USER_ID lost across the restart"
grep -q "none pending" "$WORK/app2.log" || fail "the restart does not say the schema is up to date"
echo "user $USER_ID survived the restart"
curl -sf -H "Authorization: Bearer $TOKEN" "$BASE/auth/me" | grep -q "smoke@example.com" || fail "the access token did not survive the restart"
echo "the access token issued before the restart still works"
stop_app
