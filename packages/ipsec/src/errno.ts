import { constants } from 'node:os'

// Linux has aliases (EWOULDBLOCK = EAGAIN, ENOTSUP = EOPNOTSUPP, EDEADLOCK = EDEADLK); report the usual name.
const preferred = new Set(['EAGAIN', 'EOPNOTSUPP', 'EDEADLK'])
const names = new Map<number, string>()
for (const [name, value] of Object.entries(constants.errno)) {
  if (!names.has(value) || preferred.has(name)) names.set(value, name)
}

/** `ENOENT` for 2; `E<n>` for a number this platform does not name. Accepts a positive or negated errno. */
export function errnoName(errno: number): string {
  const n = Math.abs(errno)
  return names.get(n) ?? `E${n}`
}
