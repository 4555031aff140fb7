#!/usr/bin/env bash
# Applies the repository's one style (biome.jsonc) to every file it covers, in one go, for one "format everything"
# commit; also `pnpm format`. Biome's formatter plus its safe lint fixes (never --unsafe), repeated until nothing
# changes (Biome 2.6.9 lays out a few long member chains differently on a second pass), then the check that
# `pnpm lint` runs first. Exits non-zero, listing them, when violations are left that need a hand edit.
# Usage: scripts/format-all.sh   (then: pnpm lint, and commit the result on its own)
set -uo pipefail
cd "$(dirname "$0")/.."

if [ ! -x node_modules/.bin/biome ]; then pnpm install --frozen-lockfile --reporter=append-only || exit 1; fi
if [ -n "$(git status --porcelain 2>/dev/null)" ]; then
  echo "format-all: note: the work tree has uncommitted changes; they get formatted too (commit them first for a" \
    "commit that holds the formatting alone)" >&2
fi

for pass in 1 2 3 4; do
  out=$(pnpm exec biome check --write --max-diagnostics=0 . 2>&1)
  printf 'format-all: pass %s: %s\n' "$pass" "$(grep -E '^Checked ' <<<"$out" | tail -n 1)"
  grep -qE '^Checked .*No fixes applied' <<<"$out" && break
done

if pnpm exec biome check --error-on-warnings . >/dev/null 2>&1; then
  echo "format-all: biome check passes; run pnpm lint for the type check too"
  exit 0
fi
echo "format-all: left for a hand edit (a rule's unsafe fix, or no fix):" >&2
pnpm exec biome check --error-on-warnings --max-diagnostics=50 . >&2
exit 1
