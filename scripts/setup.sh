#!/usr/bin/env bash
# Installs everything kmesh-ts needs on a Debian 12 machine that has only node and npm, mounts bpffs, installs
# the workspace and builds it. Idempotent: a second run installs nothing and rebuilds only what changed.
set -euo pipefail
cd "$(dirname "$0")/.."
export TURBO_TELEMETRY_DISABLED=1 DEBIAN_FRONTEND=noninteractive

step() { printf '\n== %s\n' "$*"; }

# Debian packages: the BPF toolchain (clang, llvm, libbpf headers + libbpf1 for koffi, bpftool), the network tools
# the tests and benchmarks drive (iproute2, nsenter from util-linux, iptables, haproxy, curl, strace), libc6-dev for
# the static kmesh-cni binary, the reference CNI plugins its test chains it after (containernetworking-plugins), and
# Chromium for the admin page's browser test (test/ui-browser.kernel.test.ts, driven by puppeteer-core).
APT_PACKAGES=(clang llvm libbpf-dev libbpf1 bpftool iproute2 util-linux iptables haproxy curl strace libc6-dev containernetworking-plugins chromium debootstrap buildah podman runc)
missing=()
for pkg in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || missing+=("$pkg")
done
if ((${#missing[@]})); then
  step "apt-get install ${missing[*]}"
  if [ "$(id -u)" != 0 ]; then echo "setup: installing ${missing[*]} needs root" >&2; exit 1; fi
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# The test VM (tools/vm) for what this kernel lacks (ESP/GCM): QEMU, busybox and Debian's 6.1 kernel, cached in
# .cache/vm (one line and no download when the cache is complete).
step "test VM cache (tools/vm/fetch.sh)"
bash tools/vm/fetch.sh

PNPM_VERSION=12.21.0
if [ "$(pnpm --version 2>/dev/null || true)" != "$PNPM_VERSION" ]; then
  step "npm install -g pnpm@$PNPM_VERSION"
  npm install -g --silent "pnpm@$PNPM_VERSION"
fi

# bpffs is not mounted on a fresh machine; the daemon mounts it too, but the tests and bpftool need it first.
if ! awk '$2=="/sys/fs/bpf" && $3=="bpf"{found=1} END{exit !found}' /proc/mounts; then
  step "mount -t bpf bpf /sys/fs/bpf"
  mount -t bpf bpf /sys/fs/bpf
fi

step "pnpm install"
pnpm install --frozen-lockfile --reporter=append-only 2>&1 | tail -n 3

step "build (turbo: C objects with clang, TypeScript with tsc)"
pnpm exec turbo run build --output-logs=errors-only
