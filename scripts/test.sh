#!/usr/bin/env bash
# The README's second command (and CI's): install, build, run every test once with tap, and end with the plain
# line "N passed, N failed" taken from tap's totals.
set -uo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh || exit 1
printf '\n== tests (KMESH_REQUIRE_PRIVILEGED=%s)\n' "${KMESH_REQUIRE_PRIVILEGED:-0}"
log=$(mktemp /tmp/kmesh-tap-XXXXXX.log)
pnpm exec tap "$@" 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
totals=$(grep -E '^# \{ total: [0-9]+' "$log" | tail -n 1)
pass=$(sed -nE 's/.*pass: ([0-9]+).*/\1/p' <<<"$totals")
fail=$(sed -nE 's/.*fail: ([0-9]+).*/\1/p' <<<"$totals")
skip=$(sed -nE 's/.*skip: ([0-9]+).*/\1/p' <<<"$totals")
rm -f "$log"
if [ -z "$totals" ]; then echo "tap printed no totals" >&2; echo "0 passed, 1 failed"; exit 1; fi
if [ "$status" != 0 ] && [ "${fail:-0}" = 0 ]; then fail=1; fi
echo "${pass:-0} passed, ${fail:-0} failed${skip:+, $skip skipped}"
exit "$status"
