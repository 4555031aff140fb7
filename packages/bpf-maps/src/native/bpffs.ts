import { mkdirSync, readFileSync } from 'node:fs'
import { BpfError, errnoName } from './errors.js'
import { lastErrno, native } from './libbpf.js'

export const DEFAULT_BPFFS = '/sys/fs/bpf'

/** True when /proc/mounts shows a bpf filesystem mounted exactly at path. */
export function isBpffsMounted(path: string = DEFAULT_BPFFS): boolean {
  return readFileSync('/proc/mounts', 'utf8')
    .split('\n')
    .some((line) => {
      const [, mountPoint, fsType] = line.split(' ')
      return mountPoint === path && fsType === 'bpf'
    })
}

/** Mounts bpffs at path (mount(2), no helper binary) when /proc/mounts has none there; a fresh machine has none. */
export function ensureBpffs(path: string = DEFAULT_BPFFS): void {
  if (isBpffsMounted(path)) return
  mkdirSync(path, { recursive: true })
  const rc = native.mount('bpf', path, 'bpf', 0, null) as number
  if (rc < 0) {
    const errno = lastErrno()
    throw new BpfError({
      op: 'mount',
      errno,
      message: `mounting bpffs at ${path} failed: ${errnoName(errno)}`,
      hint: 'Mount it by hand: mount -t bpf bpf ' + path,
    })
  }
}
