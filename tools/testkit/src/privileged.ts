import { existsSync, readFileSync } from 'node:fs'

/** CI sets this: a test that would skip for lack of privileges or kernel features fails instead. */
export const privilegesRequired = process.env.KMESH_REQUIRE_PRIVILEGED === '1'

/** Why privileged tests cannot run here, or undefined when they can: each reason names what is missing and why it is needed. */
export function missingPrivilege(): string | undefined {
  if (process.getuid?.() !== 0)
    return 'not running as root (CAP_BPF, CAP_NET_ADMIN and CAP_SYS_ADMIN: bpf(2), cgroups, netns, netlink)'
  if (!cgroup2Mount())
    return 'no cgroup v2 mount in /proc/mounts (BPF_PROG_TYPE_CGROUP_SOCK_ADDR programs attach to cgroup v2 directories)'
  if (!existsSync('/sys/fs/bpf'))
    return 'no /sys/fs/bpf directory (bpffs, kernel >= 4.4, holds the pinned maps, programs and links)'
  return undefined
}

/**
 * The `skip` option for a privileged tap test: false when it can run, otherwise a reason that names what the test
 * needs and what is missing here. `needs` names the kernel features the test exercises, with the kernel that brought
 * them (e.g. 'BPF_MAP_TYPE_LPM_TRIE (kernel >= 4.11)'), so a skip tells what a machine must have to run it.
 * `extra` reports a missing tool (tc, strace, ...) or anything else the test needs.
 * Under KMESH_REQUIRE_PRIVILEGED=1 a missing privilege throws, so the test file fails instead of skipping.
 * (The old form `privilegedSkip(extra?)` still works; tools/testkit/test/test-tiers.test.ts requires `needs` in-tree.)
 */
export function privilegedSkip(
  needs?: string | (() => string | undefined),
  extra?: () => string | undefined,
): false | string {
  if (typeof needs === 'function') [needs, extra] = [undefined, needs]
  const why = missingPrivilege() ?? extra?.()
  if (!why) return false
  const what = needs ?? 'privileges'
  if (privilegesRequired)
    throw new Error(`privileged test cannot run: it needs ${what}, and ${why}; KMESH_REQUIRE_PRIVILEGED=1`)
  return `SKIPPED (needs ${what}): ${why}`
}

/** The cgroup v2 mount point, read from /proc/mounts (it is /sys/fs/cgroup/unified on hybrid hosts). */
export function cgroup2Mount(): string | undefined {
  for (const line of readFileSync('/proc/mounts', 'utf8').split('\n')) {
    const [, mountPoint, fsType] = line.split(' ')
    if (fsType === 'cgroup2') return mountPoint
  }
  return undefined
}
