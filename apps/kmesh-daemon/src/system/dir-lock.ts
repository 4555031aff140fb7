/**
 * One daemon per pin root and state dir: an exclusive flock(2) on each directory, held for the daemon's whole
 * life. The kernel drops the lock when the process ends, also on kill -9, so a crash never leaves a stale lock
 * (a pid file would). flock works on directories, bpffs ones included, which hold no regular files.
 */
import { closeSync, fstatSync, mkdirSync, openSync, readFileSync, statSync } from 'node:fs'
import { setTimeout as sleep } from 'node:timers/promises'
import { tryLockExclusive } from '@kmesh-ts/bpf-maps'

export class LockHeldError extends Error {
  constructor(
    readonly dir: string,
    readonly holderPid: number | undefined,
    waitedMs: number,
  ) {
    const holder = holderPid
      ? `kmesh-daemon pid ${holderPid}${commandOf(holderPid)}`
      : 'another process (its pid is not in /proc/locks)'
    super(
      `${dir} is in use by ${holder}${waitedMs ? ` (waited ${waitedMs} ms)` : ''}: one daemon at a time owns a pin root and a state dir. ` +
        (holderPid ? `Stop it (kill -TERM ${holderPid}; with --keep-pinned traffic keeps flowing) ` : 'Stop it ') +
        `or start this one with --lock-wait DURATION to take over when it exits, or give this daemon its own --pin-root and --state-dir.`,
    )
    this.name = 'LockHeldError'
  }
}

export interface DirLock {
  readonly dir: string
  release(): void
}

/**
 * Locks `dir` (created if missing). Retries every 100 ms for waitMs, then throws LockHeldError naming the
 * holder. The holder may remove the directory on its way out (a plain stop removes an empty pin root): a lock
 * taken on a directory that is no longer at `dir` protects nothing, so it is dropped and taken again.
 */
export async function lockDir(dir: string, waitMs: number, signal?: AbortSignal): Promise<DirLock> {
  const started = Date.now()
  for (;;) {
    signal?.throwIfAborted()
    mkdirSync(dir, { recursive: true })
    const fd = openSync(dir, 'r')
    let locked = false
    try {
      locked = tryLockExclusive(fd)
    } catch (err) {
      closeSync(fd)
      throw err
    }
    if (locked && sameInode(fd, dir)) {
      let released = false
      return {
        dir,
        release: () => {
          if (!released) {
            released = true
            closeSync(fd)
          }
        },
      }
    }
    closeSync(fd)
    if (locked) continue // the directory was replaced under us: lock the new one
    const waited = Date.now() - started
    if (waited >= waitMs) throw new LockHeldError(dir, lockHolder(dir), waitMs && waited)
    await sleep(Math.min(100, waitMs - waited), undefined, { signal })
  }
}

function sameInode(fd: number, dir: string): boolean {
  try {
    const a = fstatSync(fd)
    const b = statSync(dir)
    return a.ino === b.ino && a.dev === b.dev
  } catch {
    return false
  }
}

/** The pid holding a flock on `dir`, from /proc/locks ("1: FLOCK ADVISORY WRITE <pid> <maj>:<min>:<ino> 0 EOF"). */
export function lockHolder(dir: string): number | undefined {
  let ino: number
  try {
    ino = statSync(dir).ino
  } catch {
    return undefined
  }
  let table = ''
  try {
    table = readFileSync('/proc/locks', 'utf8')
  } catch {
    return undefined
  }
  for (const line of table.split('\n')) {
    const f = line.trim().split(/\s+/)
    if (f[1] !== 'FLOCK' || f[3] !== 'WRITE') continue
    const inode = Number(f[5]?.split(':')[2])
    if (inode === ino) return Number(f[4])
  }
  return undefined
}

function commandOf(pid: number): string {
  try {
    const cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter(Boolean).join(' ')
    return cmd ? ` (${cmd.length > 160 ? `${cmd.slice(0, 157)}...` : cmd})` : ''
  } catch {
    return ''
  }
}
