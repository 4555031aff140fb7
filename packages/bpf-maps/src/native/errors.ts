/**
 * One error class per failure kind, each carrying the operation, the errno name and, where it helps, the map
 * name and the key in hex (conventions.md §10; cilium/ebpf wraps errno the same way).
 */
import { constants } from 'node:os'

const errnoNames = new Map<number, string>()
for (const [name, num] of Object.entries(constants.errno)) {
  // os.constants.errno has aliases (EWOULDBLOCK = EAGAIN, EDEADLOCK = EDEADLK): keep the first, common name.
  if (!errnoNames.has(num)) errnoNames.set(num, name)
}
// Kernel-internal codes the bpf syscall leaks to userspace (include/linux/errno.h).
errnoNames.set(524, 'ENOTSUPP')
errnoNames.set(512, 'ERESTARTSYS')

/** 'ENOENT' for 2; 'ERRNO_<n>' for a number this table does not know. */
export function errnoName(errno: number): string {
  const n = Math.abs(errno)
  return errnoNames.get(n) ?? `ERRNO_${n}`
}

export const Errno = {
  EPERM: 1,
  ENOENT: 2,
  EINTR: 4,
  E2BIG: 7,
  EAGAIN: 11,
  EEXIST: 17,
  EINVAL: 22,
  ENOSPC: 28,
  EOPNOTSUPP: 95,
  ENOTSUPP: 524,
} as const

export interface BpfErrorDetails {
  op: string
  errno: number
  mapName?: string | undefined
  key?: Buffer | string | undefined
  /** Replaces the default message (which is `op: CODE` plus the map and key). */
  message?: string | undefined
  /** Appended after the message: what the operator can do, or libbpf's log. */
  hint?: string | undefined
}

function describe(d: BpfErrorDetails, code: string, key: string | undefined): string {
  if (d.message) return d.message
  const where = [d.mapName ? `map ${d.mapName}` : undefined, key ? `key ${key}` : undefined].filter(Boolean).join(', ')
  return `${d.op} failed: ${code}${where ? ` (${where})` : ''}`
}

export class BpfError extends Error {
  readonly op: string
  readonly errno: number
  readonly code: string
  readonly mapName?: string
  readonly key?: string

  constructor(d: BpfErrorDetails) {
    const errno = Math.abs(d.errno)
    const code = errnoName(errno)
    const key = Buffer.isBuffer(d.key) ? d.key.toString('hex') : d.key
    super(describe(d, code, key) + (d.hint ? `\n${d.hint}` : ''))
    this.name = new.target.name
    this.op = d.op
    this.errno = errno
    this.code = code
    if (d.mapName !== undefined) this.mapName = d.mapName
    if (key !== undefined) this.key = key
  }
}

/** E2BIG / ENOSPC on an insert into a hash-like map that holds max_entries already. */
export class MapFullError extends BpfError {
  readonly maxEntries: number
  constructor(d: BpfErrorDetails & { maxEntries: number }) {
    super({
      ...d,
      message:
        d.message ??
        `${d.op}: map ${d.mapName ?? '?'} is full (max_entries ${d.maxEntries}, ${errnoName(d.errno)})` +
          (d.key ? `; key ${Buffer.isBuffer(d.key) ? d.key.toString('hex') : d.key} was not inserted` : ''),
      hint:
        d.hint ??
        `Raise its capacity with the maxEntries option of Collection.load ({ maxEntries: { ${d.mapName ?? 'name'}: N } }); a pinned map keeps its size until it is unpinned and recreated.`,
    })
    this.maxEntries = d.maxEntries
  }
}

/** ENOENT for a key that must exist (delete in a batch, put with mode 'exist'). */
export class KeyNotFoundError extends BpfError {}

/** A map or codec whose type or sizes differ from what the caller expects (checked once, at open or typed()). */
export class SpecMismatchError extends BpfError {
  constructor(op: string, message: string, mapName?: string) {
    super({ op, errno: Errno.EINVAL, mapName, message })
  }
}
