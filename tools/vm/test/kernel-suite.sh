#!/bin/sh
# Runs inside the test VM (Debian's 6.1 kernel): the kernel-interface tests — program loads (every object, XDP and
# sockops included) and feature probes, the connect hooks end to end (v4; v6 and v4-mapped in a namespace),
# getpeername, the kernel == model property tests (fewer cases, the same generators; XDP authorization through
# BPF_PROG_TEST_RUN), tc — in one tap run. Daemon-behaviour tests stay on the host kernel (15-40 x slower here).
# Each file's TAP goes to stdout as it finishes (the host streams it, so a timeout keeps what finished).
set -e
cd "$(dirname "$0")/../../.."
# The authz property test with fewer sets uses a fixed seed whose cases reach every branch the test counts (checked
# on the host: KMESH_AUTHZ_SETS=100 KMESH_AUTHZ_SEED=4242); 40 random sets missed a rare branch now and then.
export KMESH_REQUIRE_PRIVILEGED=1 LB_PROPERTY_SERVICES=2000 KMESH_AUTHZ_SETS=100 KMESH_AUTHZ_SEED=4242
exec node_modules/.bin/tap -R tap --jobs 1 --timeout 600 --disable-coverage \
  packages/bpf-progs/test/load.kernel.test.ts \
  apps/kmesh-daemon/test/kernel-features.kernel.test.ts \
  packages/bpf-progs/test/connect-smoke.kernel.test.ts \
  packages/bpf-progs/test/lb-resolve.kernel.test.ts \
  packages/bpf-progs/test/property.kernel.test.ts \
  packages/bpf-progs/test/tc-mark.kernel.test.ts \
  packages/authz-compiler/test/kernel-equals-model.kernel.test.ts \
  apps/kmesh-daemon/test/e2e-ipv6.kernel.test.ts \
  apps/kmesh-daemon/test/getpeername.kernel.test.ts
