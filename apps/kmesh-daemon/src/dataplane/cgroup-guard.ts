/**
 * Before a daemon attaches to a cgroup: is it a cgroup v2 directory, is it the root, and does another kmesh-ts
 * daemon already serve it? Two daemons' connect programs on one cgroup both run, and the first attached
 * rewrites the destination before the second sees it, so the second mesh would be silently shadowed.
 * Programs of other agents attached there are named in a warning: they run beside ours.
 */
import { existsSync, readdirSync, readFileSync, realpathSync, statfsSync, statSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { AttachType, BpfLink, cgroupId, cgroupPrograms, linkInfo, type AttachedProgram } from '@kmesh-ts/bpf-maps'
import { programs } from '@kmesh-ts/bpf-progs'

const CGROUP2_SUPER_MAGIC = 0x63677270
const CGROUP_SUPER_MAGIC = 0x27e0eb

/** The kernel keeps 15 characters of a program's name. */
const OUR_PROGRAM_NAMES = new Set([programs.connect4.name, programs.connect6.name].map((n) => n.slice(0, 15)))

export class CgroupRefusedError extends Error {
  constructor(message: string) {
    super(message)
    this.name = 'CgroupRefusedError'
  }
}

export interface CgroupCheckOptions {
  cgroupPath: string
  /** Our own pin root: programs pinned there are ours to take over. */
  pinRoot: string
  allowRoot: boolean
  force: boolean
  /** cgroup v2 mount points, i.e. root cgroups (default: from /proc/self/mountinfo). Tests name a child here. */
  roots?: string[] | undefined
}

export interface CgroupCheck {
  /** Other agents' programs on the connect hooks, for a warning. */
  foreign: AttachedProgram[]
  /** Other kmesh-ts daemons' programs, attached beside ours because of --force-cgroup. */
  forcedBeside: { ids: number[]; pinRoot: string | undefined }[]
}

/** Throws CgroupRefusedError naming the directory and what to do; returns what the caller should warn about. */
export function checkCgroup(o: CgroupCheckOptions): CgroupCheck {
  const path = resolve(o.cgroupPath)
  if (!existsSync(path)) throw new CgroupRefusedError(`--cgroup ${o.cgroupPath}: no such directory`)
  const type = statfsSync(path).type
  if (type === CGROUP_SUPER_MAGIC) {
    throw new CgroupRefusedError(
      `--cgroup ${o.cgroupPath} is in a cgroup v1 hierarchy; kmesh-ts attaches to cgroup v2 only` +
        `${cgroup2Mounts()[0] ? ` (the cgroup v2 mount here is ${cgroup2Mounts()[0]})` : ' (no cgroup v2 is mounted)'}`,
    )
  }
  if (type !== CGROUP2_SUPER_MAGIC || !statSync(path).isDirectory() || !existsSync(join(path, 'cgroup.procs'))) {
    throw new CgroupRefusedError(
      `--cgroup ${o.cgroupPath} is not a cgroup v2 directory${cgroup2Mounts()[0] ? ` (cgroup v2 is mounted at ${cgroup2Mounts()[0]})` : ''}`,
    )
  }
  const real = realpathSync(path)
  if (!o.allowRoot && (o.roots ?? cgroup2Mounts()).some((r) => safeRealpath(r) === real)) {
    throw new CgroupRefusedError(
      `--cgroup ${o.cgroupPath} is the cgroup v2 root: every process on the host would be managed. ` +
        `Give a child cgroup, or pass --allow-root-cgroup (a node deployment that enrols pods by network namespace)`,
    )
  }

  const attached = [AttachType.cgroupInet4Connect, AttachType.cgroupInet6Connect].flatMap((t) =>
    cgroupPrograms(path, t),
  )
  const ours = attached.filter((p) => OUR_PROGRAM_NAMES.has(p.name))
  const foreign = attached.filter((p) => !OUR_PROGRAM_NAMES.has(p.name))
  const forcedBeside: CgroupCheck['forcedBeside'] = []
  if (ours.length) {
    const owners = pinnedOwners(cgroupId(path))
    const byPinRoot = new Map<string | undefined, number[]>()
    for (const p of ours) {
      const owner = owners.get(p.id)
      if (owner !== undefined && safeRealpath(owner) === safeRealpath(o.pinRoot)) continue // our own, kept by --keep-pinned
      byPinRoot.set(owner, [...(byPinRoot.get(owner) ?? []), p.id])
    }
    for (const [pinRoot, ids] of byPinRoot) {
      if (!o.force) {
        throw new CgroupRefusedError(
          `--cgroup ${o.cgroupPath} already carries kmesh-ts connect programs (ids ${ids.join(', ')}) ` +
            (pinRoot
              ? `of the daemon with --pin-root ${pinRoot}`
              : 'that no pin root under the bpffs mounts holds (a daemon running without pins?)') +
            `: both would run and the first attached decides every connect, silently shadowing this mesh. Stop that daemon ` +
            `(or remove ${pinRoot ? join(pinRoot, 'links') : 'its links'} if it is gone), use its --pin-root, or pass --force-cgroup`,
        )
      }
      forcedBeside.push({ ids, pinRoot })
    }
  }
  return { foreign, forcedBeside }
}

/** cgroup v2 mount points from /proc/self/mountinfo (field 5 is the mount point, the fs type follows " - "). */
export function cgroup2Mounts(): string[] {
  let info = ''
  try {
    info = readFileSync('/proc/self/mountinfo', 'utf8')
  } catch {
    return []
  }
  const out: string[] = []
  for (const line of info.split('\n')) {
    const [left, right] = line.split(' - ')
    if (right?.split(' ')[0] !== 'cgroup2') continue
    const fields = left!.split(' ')
    // Only mounts of the hierarchy's root are root cgroups (field 4 is the mounted subtree).
    if (fields[3] === '/' && fields[4]) out.push(fields[4].replace(/\\040/g, ' '))
  }
  return out
}

/** Program id -> pin root, for the connect links pinned under any bpffs mount (<pinRoot>/links/connect4|6). */
function pinnedOwners(cgroup: bigint): Map<number, string> {
  const owners = new Map<number, string>()
  const mounts = readFileSync('/proc/mounts', 'utf8')
    .split('\n')
    .map((l) => l.split(' '))
    .filter((f) => f[2] === 'bpf')
    .map((f) => f[1]!)
  let budget = 20_000 // directory entries visited at most: bounded on a bpffs with many pins
  const visit = (dir: string, depth: number): void => {
    let entries
    try {
      entries = readdirSync(dir, { withFileTypes: true })
    } catch {
      return
    }
    for (const e of entries) {
      if (--budget < 0) return
      if (!e.isDirectory()) continue
      const sub = join(dir, e.name)
      if (e.name === 'links') {
        for (const hook of ['connect4', 'connect6']) {
          const pin = join(sub, hook)
          if (!existsSync(pin)) continue
          try {
            const link = BpfLink.openPinned(pin)
            try {
              const info = linkInfo(link)
              if (info.cgroupId === cgroup) owners.set(info.progId, dir)
            } finally {
              link.close()
            }
          } catch {
            /* not a link, or gone meanwhile */
          }
        }
      } else if (depth < 5) {
        visit(sub, depth + 1)
      }
    }
  }
  for (const m of mounts) visit(m, 0)
  return owners
}

function safeRealpath(p: string): string {
  try {
    return realpathSync(p)
  } catch {
    return resolve(p)
  }
}
