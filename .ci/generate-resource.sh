#!/usr/bin/env bash
# The issue's "done when", literally, in a throwaway copy of the repo: `npx nest g resource tags` (our
# collection, schematics/), `npm run migration:generate` once per dialect (PostgreSQL, SQLite, MariaDB),
# then on each dialect the tests (the generated spec and the OpenAPI contract, which check against the
# document of the code as it now is; on PostgreSQL the fuzz suite too) and no schema drift, with no hand
# edits and no `npm run openapi` in between. Then what CI asks of any change: lint, build, and a stale
# openapi.json caught. The copy is deleted on exit, so the working tree is never touched.
# KEEP_SCRATCH=1 keeps it for a look.
# PostgreSQL is the copy's own embedded server and SQLite files in the copy; MariaDB is the server at
# CI_MARIADB_URL (as in .ci/run; its database is dropped and recreated), skipped with a line when none answers.
set -euo pipefail
REPO="$(cd "$(dirname "$0")/.." && pwd)"
SCRATCH="$(mktemp -d)"
TESTED_OPENAPI="$(mktemp --suffix=.json)" # the document the tests checked (kept by global-setup.ts), outside the copy
chmod 755 "$SCRATCH" # the embedded PostgreSQL runs as the `postgres` user when we are root
cleanup() {
  rm -f "$TESTED_OPENAPI"
  [ "${KEEP_SCRATCH:-}" = 1 ] && echo "kept $SCRATCH" || rm -rf "$SCRATCH"
}
trap cleanup EXIT
step() { printf -- '--> %s\n' "$*"; }

# The committed files (plus any not yet committed, when run by hand), without .data or dist.
(cd "$REPO" && git ls-files -z --cached --others --exclude-standard | xargs -0 tar cf -) | tar xf - -C "$SCRATCH"
ln -s "$REPO/node_modules" "$SCRATCH/node_modules"
cd "$SCRATCH"
unset DATABASE_URL TEST_DATABASE_URL # the scratch copy's own embedded PostgreSQL, in $SCRATCH/.data

step "npx nest g resource tags"
npx nest g resource tags
for f in tags.module.ts tags.controller.ts tags.service.ts tags.repository.ts tags.constraints.ts \
  dto/create-tag.dto.ts dto/update-tag.dto.ts dto/tag.response.ts entities/tag.entity.ts; do
  [ -f "src/tags/$f" ] || { echo "missing src/tags/$f"; exit 1; }
done
for f in test/tags.e2e-spec.ts test/tags.contract.ts; do [ -f "$f" ] || { echo "missing $f"; exit 1; }; done # beside the features' own
grep -q "TagsModule," src/app.module.ts || { echo "TagsModule not imported by AppModule.forRoot"; exit 1; }
tr -d ' \n' <src/database/entities.ts | grep -q ',Tag,\?\]' || { echo "Tag not in src/database/entities.ts"; exit 1; } # one line or one per line

SQLITE_DIR="$SCRATCH/.data/sqlite"
mkdir -p "$SQLITE_DIR"
MARIADB_URL="${CI_MARIADB_URL:-mariadb://root@127.0.0.1:3306/test}"
# An empty MariaDB database at $MARIADB_URL (dropped and recreated); false when no server answers.
fresh_mariadb() {
  node -e "
    const url = new URL(process.argv[1].replace(/^mariadb:/, 'mysql:'));
    const db = decodeURIComponent(url.pathname.slice(1)); url.pathname = '/';
    const c = require('mysql2').createConnection({ uri: url.toString(), connectTimeout: 3000 });
    c.query('DROP DATABASE IF EXISTS \`' + db + '\`', (e) => {
      if (e) process.exit(1);
      c.query('CREATE DATABASE \`' + db + '\` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci', (e) => { c.end(); process.exit(e ? 1 : 0); });
    });" "$MARIADB_URL" 2>/dev/null
}
DIALECTS=(postgres sqlite)
if fresh_mariadb; then DIALECTS+=(mysql); else echo "no MariaDB at $MARIADB_URL: the mysql/ migration and the MariaDB tests are skipped"; fi
# The app's DATABASE_URL for generating on each dialect (empty: the copy's embedded PostgreSQL), and the tests'.
generate_url() { case "$1" in postgres) echo "" ;; sqlite) echo "sqlite:$SQLITE_DIR/generate.db" ;; mysql) echo "$MARIADB_URL" ;; esac; }
test_url() { case "$1" in postgres) echo "" ;; sqlite) echo "sqlite:$SQLITE_DIR/test.db" ;; mysql) echo "$MARIADB_URL" ;; esac; }
with_url() { local url="$1"; shift; if [ -n "$url" ]; then env DATABASE_URL="$url" "$@"; else "$@"; fi; }

for dialect in "${DIALECTS[@]}"; do
  step "npm run migration:generate on $dialect (bare, as the issue's \"done when\" runs it: the name defaults to SchemaChange)"
  with_url "$(generate_url "$dialect")" npm run --silent migration:generate
  MIGRATION="$(find "src/database/migrations/$dialect" -name '*-SchemaChange.ts')"
  [ -n "$MIGRATION" ] || { echo "no migration in src/database/migrations/$dialect"; exit 1; }
  grep -q 'tags_name_key' "$MIGRATION" || { echo "$MIGRATION does not name the unique constraint"; exit 1; }
done
grep -q 'CONSTRAINT "tags_name_key" UNIQUE' src/database/migrations/postgres/*-SchemaChange.ts || { echo "the PostgreSQL migration does not name the unique constraint"; exit 1; }

for dialect in "${DIALECTS[@]}"; do
  url="$(test_url "$dialect")"
  if [ "$dialect" = postgres ]; then
    step "postgres: the generated spec, the OpenAPI contract and the fuzz suite pass (no npm run openapi before them)"
    TEST_OPENAPI_DOCUMENT="$TESTED_OPENAPI" FUZZ_RUNS=30 npm run --silent test:e2e -- test/tags test/openapi test/fuzz # a short fuzz pass: npm test runs the full one
    grep -q '"/tags/{id}"' "$TESTED_OPENAPI" || { echo "the tests' OpenAPI document does not have /tags/{id}"; exit 1; }
  else
    [ "$dialect" = mysql ] && fresh_mariadb
    step "$dialect: the generated spec and the OpenAPI contract pass on its migrations"
    TEST_DATABASE_URL="$url" npm run --silent test:e2e -- test/tags test/openapi
  fi

  step "$dialect: no schema drift (entities vs. a freshly migrated database)"
  [ "$dialect" = mysql ] && fresh_mariadb
  [ "$dialect" = sqlite ] && url="sqlite:$SQLITE_DIR/drift.db"
  folder="src/database/migrations"; [ "$dialect" = postgres ] || folder="$folder/$dialect"
  with_url "$url" npm run --silent migration:run
  with_url "$url" npm run --silent typeorm -- migration:generate --check --dryrun "$folder/Drift"
done

step "npm run lint (Prettier + ESLint on the generated files, unchanged); build"
npm run --silent lint
npm run --silent build

step "npm run openapi: the committed openapi.json is now stale (CI's check fails until it is committed), and the new one is what the tests checked"
npm run --silent openapi
if cmp -s openapi.json "$REPO/openapi.json"; then echo "openapi.json did not change: CI could not see it is stale"; exit 1; fi
grep -q '"/tags/{id}"' openapi.json || { echo "openapi.json does not document /tags/{id}"; exit 1; }
npx prettier --stdin-filepath openapi.json < "$TESTED_OPENAPI" | diff -u openapi.json - ||
  { echo "the tests checked a different OpenAPI document than npm run openapi writes"; exit 1; }
echo "generated resource: migrated on ${DIALECTS[*]}, its spec and the contract green on each (and the fuzz suite on postgres); lint-clean, built, documented"
