#!/usr/bin/env bash
# The README's first command: install, build, and run the daemon on the embedded demo mesh (no Kubernetes).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
printf '\n== demo\n'
exec node apps/kmesh-daemon/dist/demo/main.js "$@"
