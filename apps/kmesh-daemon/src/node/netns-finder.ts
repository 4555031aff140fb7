/**
 * Finds a pod's network namespace from its IP, Kmesh's way (pkg/utils GetPodNSpath: walk /proc, look inside each
 * process's netns for the pod IP), without entering any namespace: /proc/<pid>/net/ shows the network namespace
 * of that process, so its local IPv4 addresses are the `/32 host LOCAL` entries of /proc/<pid>/net/fib_trie and its
 * IPv6 addresses the lines of /proc/<pid>/net/if_inet6. Processes are grouped by netns first (the inode in the
 * /proc/<pid>/ns/net link), so each namespace is read once per scan. The answer is /proc/<pid>/ns/net of one
 * process in it, which is what `nsenter --net=` takes.
 *
 * Why not the CNI cache or /var/run/netns: container runtimes name pod namespaces differently (cri-o under
 * /var/run/netns, containerd under /var/run/netns/cni-*, others elsewhere) and the CNI cache is per runtime;
 * every pod has at least its sandbox (pause) process, so /proc always finds it. It needs the host's /proc
 * (`hostPID: true` in a DaemonSet, or the host's /proc mounted and given as procRoot).
 *
 * Never returned: the namespace of init (/proc/1) and our own (the host's): enrolling it would manage every host
 * process. Loopback addresses are never matched. When nothing matches, the caller records it and retries later.
 */
import { readdirSync, readFileSync, readlinkSync, statSync } from 'node:fs'
import { join } from 'node:path'
import { isIPv4, isIPv6 } from 'node:net'

export interface FoundNetns {
  /** A path nsenter --net= takes: <procRoot>/<pid>/ns/net. */
  path: string
  /** The namespace's identity, `net:[inode]`: a pod restarted into a new sandbox gets another one. */
  id: string
  pid: number
}

export interface NetnsFinderOptions {
  /** The host's /proc (default /proc). */
  procRoot?: string | undefined
  /** A scan is reused for this long (default 500 ms): a batch of pods shares one walk of /proc. */
  cacheMs?: number | undefined
}

export type NetnsFinder = (podIPs: readonly string[]) => FoundNetns | undefined

interface Scan {
  at: number
  byAddress: Map<string, FoundNetns>
}

/** A finder over the host's /proc; `invalidate()` forgets the cached scan (after a failed enrol, say). */
export function procNetnsFinder(options: NetnsFinderOptions = {}): NetnsFinder & { invalidate(): void } {
  const procRoot = options.procRoot ?? '/proc'
  const cacheMs = options.cacheMs ?? 500
  let scan: Scan | undefined
  const find = (podIPs: readonly string[]): FoundNetns | undefined => {
    const wanted = podIPs.map(normalise).filter((a): a is string => a !== undefined && !isLoopback(a))
    if (!wanted.length) return undefined
    if (!scan || Date.now() - scan.at > cacheMs) scan = scanProc(procRoot)
    for (const a of wanted) {
      const hit = scan.byAddress.get(a)
      if (hit) return hit
    }
    // A pod that just started may be missing from a scan a moment old: look once more, fresh.
    if (Date.now() - scan.at > 50) {
      scan = scanProc(procRoot)
      for (const a of wanted) {
        const hit = scan.byAddress.get(a)
        if (hit) return hit
      }
    }
    return undefined
  }
  return Object.assign(find, {
    invalidate: () => {
      scan = undefined
    },
  })
}

/**
 * The identity of a namespace given by path (a /proc/<pid>/ns/net link or a netns bind mount such as the CNI's
 * /var/run/netns/cni-…), in the form the /proc links read: `net:[inode]`.
 */
export function netnsIdOf(path: string): string | undefined {
  try {
    return `net:[${statSync(path).ino}]`
  } catch {
    return undefined
  }
}

function scanProc(procRoot: string): Scan {
  const hostIds = new Set(['1', 'self'].map((p) => netnsId(procRoot, p)).filter((id): id is string => !!id))
  const firstPid = new Map<string, number>()
  for (const entry of readdirSync(procRoot)) {
    if (!/^\d+$/.test(entry)) continue
    const id = netnsId(procRoot, entry)
    if (!id || hostIds.has(id) || firstPid.has(id)) continue
    firstPid.set(id, Number(entry))
  }
  const byAddress = new Map<string, FoundNetns>()
  for (const [id, pid] of firstPid) {
    const found = { path: join(procRoot, String(pid), 'ns', 'net'), id, pid }
    for (const a of localAddresses(join(procRoot, String(pid), 'net'))) if (!byAddress.has(a)) byAddress.set(a, found)
  }
  return { at: Date.now(), byAddress }
}

function netnsId(procRoot: string, pid: string): string | undefined {
  try {
    return readlinkSync(join(procRoot, pid, 'ns', 'net'))
  } catch {
    return undefined // exited, or a kernel thread
  }
}

/** The local addresses of the netns whose /proc/<pid>/net directory this is. */
export function localAddresses(procNetDir: string): string[] {
  const out: string[] = []
  try {
    out.push(...localIPv4FromFibTrie(readFileSync(join(procNetDir, 'fib_trie'), 'utf8')))
  } catch {
    /* exited, or no IPv4 */
  }
  try {
    out.push(...ipv6FromIfInet6(readFileSync(join(procNetDir, 'if_inet6'), 'utf8')))
  } catch {
    /* exited, or IPv6 disabled */
  }
  return out
}

/** `|-- 10.0.0.5` followed by `/32 host LOCAL`: an address of this namespace (fib_trie's local table). */
export function localIPv4FromFibTrie(text: string): string[] {
  const out = new Set<string>()
  let last: string | undefined
  for (const line of text.split('\n')) {
    const leaf = /\|--\s+(\d+\.\d+\.\d+\.\d+)\s*$/.exec(line)
    if (leaf) {
      last = leaf[1]
      continue
    }
    if (line.includes('+--')) last = undefined
    if (last && /\/32 host LOCAL/.test(line)) out.add(last)
  }
  return [...out]
}

/** if_inet6: 32 hex digits, then index, prefix length, scope, flags and device. */
export function ipv6FromIfInet6(text: string): string[] {
  const out: string[] = []
  for (const line of text.split('\n')) {
    const hex = line.trim().split(/\s+/)[0]
    if (!hex || !/^[0-9a-f]{32}$/i.test(hex)) continue
    const groups = hex.match(/.{4}/g)!.map((g) => Number.parseInt(g, 16).toString(16))
    const a = normalise(groups.join(':'))
    if (a) out.push(a)
  }
  return out
}

/** One spelling per address (IPv6 expanded then compressed by URL parsing), undefined for a non-address. */
function normalise(address: string): string | undefined {
  if (isIPv4(address)) return address
  if (!isIPv6(address)) return undefined
  try {
    return new URL(`http://[${address}]/`).hostname.replace(/^\[|\]$/g, '')
  } catch {
    return undefined
  }
}

function isLoopback(a: string): boolean {
  return a.startsWith('127.') || a === '::1'
}
