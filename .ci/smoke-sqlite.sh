#!/usr/bin/env bash
# The built app on a SQLite file (DATABASE_URL=sqlite:./.data/app.db, as the README says): it starts,
# the README's curl walk-through passes twice, SIGTERM exits 0, and a restart finds the data.
# Needs better-sqlite3 (npm run drivers).
set -euo pipefail
# shellcheck source=smoke-lib.sh
source "$(dirname "$0")/smoke-lib.sh"
SQLITE=(DATABASE_URL=sqlite:./.data/app.db JWT_SECRET=sqlite-smoke-secret-of-at-least-32-chars)

start_app app1 "${SQLITE[@]}"
[ -s "$WORK/.data/app.db" ] || fail "no database file at ./.data/app.db"
readme_walkthrough
code=$(curl -s -o /dev/null -w '%{http_code}' -H 'Content-Type: application/json' \
  -d '{"name":"Kept","email":"kept@example.com","password":"sqlite smoke password"}' "$BASE/users")
[ "$code" = 201 ] || fail "POST /users answered $code"
stop_app
start_app app2 "${SQLITE[@]}"
curl -s "$BASE/users?limit=100" | grep -q '"name":"Kept"' || fail "the user is gone after a restart"
stop_app
echo "SQLite smoke passed: walk-through twice, SIGTERM exit 0, data kept across a restart"
