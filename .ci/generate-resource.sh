#!/usr/bin/env bash
# The README's "Adding a resource", literally, in a throwaway copy of the repo: `nest g resource tags`
# (our collection, schematics/), `npm run migration:generate`, then lint, build, the OpenAPI document,
# the generated e2e spec and the contract test — with no hand edits. The copy is deleted on exit,
# so the working tree is never touched. KEEP_SCRATCH=1 keeps it for a look.
set -euo pipefail
REPO="$(cd "$(dirname "$0")/.." && pwd)"
SCRATCH="$(mktemp -d)"
chmod 755 "$SCRATCH" # the embedded PostgreSQL runs as the `postgres` user when we are root
cleanup() { [ "${KEEP_SCRATCH:-}" = 1 ] && echo "kept $SCRATCH" || rm -rf "$SCRATCH"; }
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
for f in test/tags.e2e-spec.ts test/contract/tags.contract.ts; do [ -f "$f" ] || { echo "missing $f"; exit 1; }; done
grep -q "TagsModule," src/app.module.ts || { echo "TagsModule not imported by AppModule.forRoot"; exit 1; }
grep -q "Tag\]" src/database/entities.ts || { echo "Tag not in src/database/entities.ts"; exit 1; }

step "npm run migration:generate (bare, as the issue's \"done when\" runs it: the name defaults to SchemaChange)"
npm run --silent migration:generate
grep -q 'CONSTRAINT "tags_name_key" UNIQUE' src/database/migrations/postgres/*-SchemaChange.ts ||
  { echo "the migration does not name the unique constraint"; exit 1; }
npm run --silent migration:run
npm run --silent typeorm -- migration:generate --check --dryrun src/database/migrations/Drift

step "npm run lint (Prettier + ESLint on the generated files, unchanged)"
npm run --silent lint

step "npm run build && npm run openapi (the document gains /tags)"
npm run --silent build
npm run --silent openapi
grep -q '"/tags/{id}"' openapi.json || { echo "openapi.json does not document /tags/{id}"; exit 1; }

step "the generated spec, the OpenAPI contract and the fuzz suite (targets from openapi.json) pass"
FUZZ_RUNS=30 npm run --silent test:e2e -- test/tags test/openapi test/fuzz # a short fuzz pass: npm test runs the full one
echo "generated resource: migrated, lint-clean, built, documented, its spec green"
