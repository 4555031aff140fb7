/**
 * Runs a command as a process inside a cgroup v2 directory (and optionally a network namespace), so the
 * programs attached to that cgroup see its connects: the shell writes itself into cgroup.procs, then execs.
 */
import { spawn } from 'node:child_process'
import { readFileSync } from 'node:fs'

export interface ExecPlace {
  /** cgroup v2 directory to run in; undefined runs outside any managed cgroup. */
  cgroupPath?: string | undefined
  /** network namespace to enter (e.g. /run/netns/NAME), via nsenter (not `ip netns exec`, which remounts /sys). */
  netnsPath?: string | undefined
}

export function execIn(place: ExecPlace, command: string[]): Promise<string> {
  const cmd = place.netnsPath ? ['nsenter', `--net=${place.netnsPath}`, ...command] : command
  const [file, args] = place.cgroupPath
    ? ['sh', ['-c', 'echo $$ > "$0/cgroup.procs" && exec "$@"', place.cgroupPath, ...cmd]]
    : [cmd[0]!, cmd.slice(1)]
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, { stdio: ['ignore', 'pipe', 'pipe'] })
    let out = ''
    let err = ''
    child.stdout.on('data', (d) => (out += d))
    child.stderr.on('data', (d) => (err += d))
    child.on('error', reject)
    child.on('close', (code) => {
      if (code === 0) resolve(out)
      else
        reject(new Error(`${command[0]} in ${place.cgroupPath ?? 'no managed cgroup'} exited ${code}: ${err.trim()}`))
    })
  })
}

/** The cgroup v2 mount point from /proc/mounts (hybrid hosts mount it at /sys/fs/cgroup/unified). */
export function cgroup2Mount(): string | undefined {
  for (const line of readFileSync('/proc/mounts', 'utf8').split('\n')) {
    const [, mountPoint, fsType] = line.split(' ')
    if (fsType === 'cgroup2') return mountPoint
  }
  return undefined
}
