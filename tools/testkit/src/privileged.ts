import { existsSync, readFileSync } from 'node:fs'

/** CI sets this: a test that would skip for lack of privileges or kernel features fails instead. */
export const privilegesRequired = process.env.KMESH_REQUIRE_PRIVILEGED === '1'

/** Why privileged tests cannot run here, or undefined when they can. */
export function missingPrivilege(): string | undefined {
  if (process.getuid?.() !== 0) return 'not running as root'
  if (!cgroup2Mount()) return 'no cgroup v2 mount in /proc/mounts'
  if (!existsSync('/sys/fs/bpf')) return 'no /sys/fs/bpf directory'
  return undefined
}

/**
 * The `skip` option for a privileged tap test: false when it can run, a loud reason otherwise.
 * Under KMESH_REQUIRE_PRIVILEGED=1 a missing privilege throws, so the test file fails instead of skipping.
 */
export function privilegedSkip(extra?: () => string | undefined): false | string {
  const why = missingPrivilege() ?? extra?.()
  if (!why) return false
  if (privilegesRequired) throw new Error(`privileged test cannot run (${why}) and KMESH_REQUIRE_PRIVILEGED=1`)
  return `SKIPPED (needs privileges): ${why}`
}

/** The cgroup v2 mount point, read from /proc/mounts (it is /sys/fs/cgroup/unified on hybrid hosts). */
export function cgroup2Mount(): string | undefined {
  for (const line of readFileSync('/proc/mounts', 'utf8').split('\n')) {
    const [, mountPoint, fsType] = line.split(' ')
    if (fsType === 'cgroup2') return mountPoint
  }
  return undefined
}
