import { execFileSync, spawn, type ChildProcess } from 'node:child_process'
import { mkdirSync, readFileSync, rmSync, rmdirSync, writeFileSync, existsSync } from 'node:fs'
import { join } from 'node:path'
import { cgroup2Mount } from './privileged.js'

let serial = 0
/** A name unique to this process and call, prefixed so leftovers are easy to spot (kmesh-test-*). */
export function uniqueName(kind: string): string {
  return `kmesh-test-${kind}-${process.pid}-${++serial}`
}

/** Mounts bpffs at /sys/fs/bpf unless /proc/mounts already shows one there. */
export function ensureBpffs(): void {
  const mounted = readFileSync('/proc/mounts', 'utf8')
    .split('\n')
    .some((l) => l.split(' ')[1] === '/sys/fs/bpf' && l.split(' ')[2] === 'bpf')
  if (!mounted) execFileSync('mount', ['-t', 'bpf', 'bpf', '/sys/fs/bpf'])
}

export interface Disposable {
  close(): void
}

/** A fresh pin directory under /sys/fs/bpf, removed with everything pinned inside on close(). */
export function tempPinDir(): Disposable & { path: string } {
  ensureBpffs()
  const path = join('/sys/fs/bpf', uniqueName('pins'))
  mkdirSync(path, { recursive: true })
  return { path, close: () => rmSync(path, { recursive: true, force: true }) }
}

/**
 * A child cgroup of the cgroup v2 root, created for one test. close() moves any process left in it back to
 * the root and removes it (a cgroup with processes cannot be removed).
 */
export function tempCgroup(): Disposable & { path: string } {
  const root = cgroup2Mount()
  if (!root) throw new Error('no cgroup v2 mount in /proc/mounts')
  const path = join(root, uniqueName('cg'))
  mkdirSync(path)
  return {
    path,
    close: () => {
      if (!existsSync(path)) return
      for (const pid of readFileSync(join(path, 'cgroup.procs'), 'utf8').split('\n').filter(Boolean)) {
        try {
          writeFileSync(join(root, 'cgroup.procs'), pid)
        } catch {
          /* the process already exited */
        }
      }
      rmdirSync(path)
    },
  }
}

/**
 * Starts `node --input-type=module -e script` inside a cgroup: the shell puts itself into the cgroup
 * before exec, so every connect() the script makes is seen by programs attached there.
 */
export function spawnNodeInCgroup(cgroupPath: string, script: string, args: string[] = []): ChildProcess {
  return spawn(
    'sh',
    [
      '-c',
      'echo $$ > "$0/cgroup.procs" && exec "$@"',
      cgroupPath,
      process.execPath,
      '--input-type=module',
      '-e',
      script,
      ...args,
    ],
    {
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  )
}

/** Runs a node script in the cgroup and resolves with its stdout (rejects with stderr on a non-zero exit). */
export function runNodeInCgroup(cgroupPath: string, script: string, args: string[] = []): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawnNodeInCgroup(cgroupPath, script, args)
    let out = ''
    let err = ''
    child.stdout!.on('data', (d) => (out += d))
    child.stderr!.on('data', (d) => (err += d))
    child.on('close', (code) => (code === 0 ? resolve(out) : reject(new Error(`child exited ${code}: ${err}`))))
  })
}

/** A network namespace created for one test (ip netns add), deleted on close(). */
export function tempNetns(): Disposable & { name: string; exec(cmd: string[]): string } {
  const name = uniqueName('ns')
  execFileSync('ip', ['netns', 'add', name])
  return {
    name,
    exec: (cmd) => execFileSync('nsenter', [`--net=/run/netns/${name}`, ...cmd], { encoding: 'utf8' }),
    close: () => {
      try {
        execFileSync('ip', ['netns', 'del', name])
      } catch {
        /* already gone */
      }
    },
  }
}
