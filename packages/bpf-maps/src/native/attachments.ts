/**
 * What the kernel has attached to a cgroup, and what a link is attached to: the facts a daemon needs before it
 * attaches its own programs, so it can refuse a cgroup another daemon already serves (BPF_PROG_QUERY,
 * BPF_OBJ_GET_INFO_BY_FD on programs and links).
 */
import { closeSync, openSync, statSync } from 'node:fs'
import { BpfError, errnoName } from './errors.js'
import { closeFd, lastErrno, native, sizes } from './libbpf.js'
import type { BpfLink } from './program.js'

/** enum bpf_attach_type values of the cgroup hooks this project uses (linux/bpf.h). */
export const AttachType = { cgroupInet4Connect: 10, cgroupInet6Connect: 11 } as const

export interface AttachedProgram {
  id: number
  /** The kernel's program name: the C function name cut to 15 characters. */
  name: string
  /** BPF_PROG_TYPE_* */
  type: number
}

/** The programs attached to a cgroup v2 directory for one attach type, in the kernel's order. */
export function cgroupPrograms(cgroupPath: string, attachType: number): AttachedProgram[] {
  const cgroupFd = openSync(cgroupPath, 'r')
  try {
    // Ask for the count first, then for that many ids (the list can grow between the two calls: ask with room).
    for (let room = 16; ; room *= 4) {
      const ids = new Uint32Array(room)
      const count = [room]
      const flags = [0]
      const rc = native.bpf_prog_query(cgroupFd, attachType, 0, flags, ids, count) as number
      if (rc < 0 && -rc === 28 /* ENOSPC: more than room */ && room < 4096) continue
      if (rc < 0)
        throw new BpfError({
          op: 'bpf_prog_query',
          errno: rc,
          message: `listing the programs attached to cgroup ${cgroupPath} failed: ${errnoName(rc)}`,
        })
      return [...ids.subarray(0, count[0])].map(programById)
    }
  } finally {
    closeSync(cgroupFd)
  }
}

function programById(id: number): AttachedProgram {
  const fd = native.bpf_prog_get_fd_by_id(id) as number
  // The program may have gone between the query and now; it is still worth naming by id.
  if (fd < 0) return { id, name: '', type: -1 }
  try {
    const info = Buffer.alloc(sizes.progInfo)
    const rc = native.bpf_obj_get_info_by_fd(fd, info, [info.length]) as number
    if (rc < 0) return { id, name: '', type: -1 }
    // struct bpf_prog_info: type at 0, name[16] at 64.
    const raw = info.subarray(64, 80)
    const end = raw.indexOf(0)
    return { id, name: raw.subarray(0, end < 0 ? 16 : end).toString('latin1'), type: info.readUInt32LE(0) }
  } finally {
    closeFd(fd)
  }
}

export interface CgroupLinkInfo {
  linkId: number
  progId: number
  /** 0 when the link is not a cgroup link. */
  cgroupId: bigint
  attachType: number
}

/** What a link is: its id, its program and, for a cgroup link, the cgroup it is attached to. */
export function linkInfo(link: BpfLink): CgroupLinkInfo {
  const info = Buffer.alloc(sizes.linkInfo)
  const rc = native.bpf_obj_get_info_by_fd(link.fd, info, [info.length]) as number
  if (rc < 0)
    throw new BpfError({
      op: 'bpf_obj_get_info_by_fd',
      errno: rc,
      message: `reading link ${link.description} failed: ${errnoName(rc)}`,
    })
  const BPF_LINK_TYPE_CGROUP = 3
  const isCgroup = info.readUInt32LE(0) === BPF_LINK_TYPE_CGROUP
  return {
    linkId: info.readUInt32LE(4),
    progId: info.readUInt32LE(8),
    cgroupId: isCgroup ? info.readBigUInt64LE(16) : 0n,
    attachType: isCgroup ? info.readUInt32LE(24) : -1,
  }
}

/** A cgroup v2 directory's id as BPF reports it (cgroup_id in link info): the inode number of the directory. */
export function cgroupId(cgroupPath: string): bigint {
  return statSync(cgroupPath, { bigint: true }).ino
}

const LOCK_EX = 2
const LOCK_NB = 4

/**
 * flock(fd, LOCK_EX | LOCK_NB): true when this process now holds the exclusive lock, false when another open
 * file description holds it. The kernel drops the lock when the last fd of that description closes, also when
 * the process is killed, so a crashed holder never leaves a stale lock. (Here because this package is the one
 * place that loads native code.)
 */
export function tryLockExclusive(fd: number): boolean {
  const rc = native.flock(fd, LOCK_EX | LOCK_NB) as number
  if (rc === 0) return true
  const errno = lastErrno()
  if (errno === 11 /* EWOULDBLOCK */) return false
  throw new BpfError({ op: 'flock', errno: -errno, message: `flock(LOCK_EX) on fd ${fd} failed: ${errnoName(errno)}` })
}
