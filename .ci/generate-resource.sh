#!/usr/bin/env bash
# `nest g resource` in a scratch copy of the repo: files land in src/<name>/ like their neighbours
# and the project still compiles.
set -euo pipefail
REPO="$(cd "$(dirname "$0")/.." && pwd)"
SCRATCH="$(mktemp -d)"
trap 'rm -rf "$SCRATCH"' EXIT
(cd "$REPO" && git ls-files -z | xargs -0 tar cf - ) | tar xf - -C "$SCRATCH"
ln -s "$REPO/node_modules" "$SCRATCH/node_modules"
cd "$SCRATCH"
npx nest g resource tags --type rest --crud
for f in tags.module.ts tags.controller.ts tags.service.ts dto/create-tag.dto.ts dto/update-tag.dto.ts entities/tag.entity.ts; do
  [ -f "src/tags/$f" ] || { echo "missing src/tags/$f"; exit 1; }
done
grep -q "TagsModule" src/app.module.ts || { echo "TagsModule not wired into AppModule"; exit 1; }
npx tsc --noEmit -p tsconfig.build.json
echo "generated resource compiles"
