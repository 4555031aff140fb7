/**
 * The decision diagram of one destination address (include/authz.h). The policies that apply are first
 * specialised to that address (destination-IP tests are decided here, once), then the remaining tests are split
 * by property in a fixed order — destination port, source prefix, source identity — each level sending every
 * class of values (one port; the addresses whose longest configured prefix is one prefix; one identity) to the
 * child that decides the rest. A child is found by which Matches are still alive; equal nodes are interned once
 * for the whole node, so workloads with the same policies share one diagram.
 */
import { AuthzDim, type AuthzNode } from '@kmesh-ts/bpf-maps/codecs'
import {
  hostPrefix,
  identityHolds,
  type MatchTests,
  type PolicyTests,
  type Prefix,
  prefixCovers,
  type SourceIdentity,
} from './ingest.js'

/** A policy applying to the address, in key order. */
export interface AppliedPolicy {
  key: string
  slot: number
  deny: boolean
  dryRun: boolean
  tests: PolicyTests
}

export interface PortEdge {
  node: number
  port: number
  child: number
}
export interface SourceEdge {
  node: number
  prefix: Prefix
  child: number
}
export interface IdentityEdge {
  node: number
  identity: number
  child: number
}

/** The interned nodes of one generation (local ids from 1) and their edges. */
export class NodeTable {
  readonly nodes: AuthzNode[] = [{ dim: AuthzDim.leaf, verdict: 0, dryRun: false, next: 0, policy: 0, dryPolicy: 0 }]
  readonly portEdges: PortEdge[] = []
  readonly sourceEdges: SourceEdge[] = []
  readonly identityEdges: IdentityEdge[] = []
  readonly #interned = new Map<string, number>()

  get nodeCount(): number {
    return this.nodes.length - 1
  }

  leaf(verdict: 0 | 1, policy: number, dryRun: boolean, dryPolicy: number): number {
    const key = `L${verdict},${policy},${dryRun ? 1 : 0},${dryPolicy}`
    return this.#intern(key, { dim: AuthzDim.leaf, verdict, dryRun, next: 0, policy, dryPolicy }, () => {})
  }

  port(next: number, edges: Array<[number, number]>): number {
    const key = `P${next}|${edges.map(([p, c]) => `${p}:${c}`).join(',')}`
    return this.#intern(key, inner(AuthzDim.port, next), (node) => {
      for (const [port, child] of edges) this.portEdges.push({ node, port, child })
    })
  }

  source(next: number, edges: Array<[Prefix, number]>): number {
    const key = `S${next}|${edges.map(([p, c]) => `${p.family}/${p.bytes.join('.')}/${p.length}:${c}`).join(',')}`
    return this.#intern(key, inner(AuthzDim.sourceIp, next), (node) => {
      for (const [prefix, child] of edges) this.sourceEdges.push({ node, prefix, child })
    })
  }

  identity(next: number, edges: Array<[number, number]>): number {
    const key = `I${next}|${edges.map(([i, c]) => `${i}:${c}`).join(',')}`
    return this.#intern(key, inner(AuthzDim.identity, next), (node) => {
      for (const [identity, child] of edges) this.identityEdges.push({ node, identity, child })
    })
  }

  #intern(key: string, node: AuthzNode, addEdges: (id: number) => void): number {
    const known = this.#interned.get(key)
    if (known !== undefined) return known
    const id = this.nodes.length
    this.nodes.push(node)
    this.#interned.set(key, id)
    addEdges(id)
    return id
  }
}

const inner = (dim: AuthzNode['dim'], next: number): AuthzNode => ({
  dim,
  verdict: 0,
  dryRun: false,
  next,
  policy: 0,
  dryPolicy: 0,
})

/** Alive Matches as a bit set, with a string key for memoising. */
type Alive = Uint8Array

const aliveKey = (a: Alive): string => {
  let s = ''
  for (let i = 0; i < a.length; i += 4096) s += String.fromCharCode(...a.subarray(i, i + 4096))
  return s
}

/** Identity lookups shared by every diagram of one compile: truth of each identity-testing Match per identity. */
export class IdentityUniverse {
  readonly #truth = new WeakMap<MatchTests, Uint8Array>()
  /** index = identity id; 0 is "no identity" */
  constructor(readonly identities: readonly (SourceIdentity | undefined)[]) {}

  holds(m: MatchTests, id: number): boolean {
    if (!m.identity) return true
    let t = this.#truth.get(m)
    if (!t) {
      const tests = m.identity
      t = Uint8Array.from(this.identities, (identity) => (identityHolds(tests, identity) ? 1 : 0))
      this.#truth.set(m, t)
    }
    return t[id] === 1
  }
}

/**
 * Builds (or finds) the diagram of one address: `policies` already apply to the workload; destination tests are
 * decided against `address` here. Returns the root node id.
 */
export function buildDiagram(
  table: NodeTable,
  universe: IdentityUniverse,
  policies: readonly AppliedPolicy[],
  address: Uint8Array,
): number {
  const dst = hostPrefix(address)
  // The Matches left after the destination tests, and each clause as indexes into them.
  const matches: MatchTests[] = []
  const shape = policies.map((p) =>
    p.tests.map((rule) =>
      rule.map((clause) => {
        if (clause === 'always') return 'always' as const
        const kept: number[] = []
        for (const m of clause) {
          const dstOk =
            (m.dstIps === undefined || m.dstIps.some((q) => prefixCovers(q, dst))) &&
            !m.notDstIps.some((q) => prefixCovers(q, dst))
          if (dstOk) kept.push(matches.push(m) - 1)
        }
        return kept
      }),
    ),
  )
  const memo = new Map<string, number>()
  const withLevel = (level: string, alive: Alive, build: () => number): number => {
    const key = level + aliveKey(alive)
    const known = memo.get(key)
    if (known !== undefined) return known
    const id = build()
    memo.set(key, id)
    return id
  }
  const narrow = (alive: Alive, keep: (m: MatchTests) => boolean): Alive => {
    const out = new Uint8Array(alive.length)
    for (let i = 0; i < alive.length; i++) if (alive[i] === 1 && keep(matches[i] as MatchTests)) out[i] = 1
    return out
  }
  const aliveMatches = function* (alive: Alive): Generator<MatchTests> {
    for (let i = 0; i < alive.length; i++) if (alive[i] === 1) yield matches[i] as MatchTests
  }

  const leaf = (alive: Alive): number =>
    withLevel('L', alive, () => {
      const holds = (p: number) =>
        (shape[p] ?? []).some((rule) => rule.every((c) => c === 'always' || c.some((i) => alive[i] === 1)))
      let dryDeny: AppliedPolicy | undefined
      let deny: AppliedPolicy | undefined
      let allow: AppliedPolicy | undefined
      let enforcedAllows = 0
      let dryAllows = 0
      let dryAllowMatched = false
      policies.forEach((p, i) => {
        const matched = holds(i)
        if (p.deny && p.dryRun) dryDeny ??= matched ? p : undefined
        else if (p.deny) deny ??= matched ? p : undefined
        else if (p.dryRun) {
          dryAllows++
          dryAllowMatched ||= matched
        } else {
          enforcedAllows++
          allow ??= matched ? p : undefined
        }
      })
      // The dry-run finding counted with this leaf: a matching dry-run DENY, else (only when no enforced ALLOW
      // applies) dry-run ALLOW policies none of which matches — ztunnel's "dry-run: no allow policies match".
      const dryAllowMiss = !deny && enforcedAllows === 0 && dryAllows > 0 && !dryAllowMatched
      const dryRun = dryDeny !== undefined || dryAllowMiss
      const dryPolicy = dryDeny?.slot ?? 0
      if (deny) return table.leaf(1, deny.slot, dryRun, dryPolicy)
      if (enforcedAllows === 0) return table.leaf(0, 0, dryRun, dryPolicy)
      if (allow) return table.leaf(0, allow.slot, dryRun, dryPolicy)
      return table.leaf(1, 0, dryRun, dryPolicy)
    })

  const identityLevel = (alive: Alive): number =>
    withLevel('I', alive, () => {
      let tested = false
      for (const m of aliveMatches(alive)) if (m.identity) tested = true
      if (!tested) return leaf(alive)
      const children = universe.identities.map((_, id) => leaf(narrow(alive, (m) => universe.holds(m, id))))
      const next = mostCommon(children)
      const edges: Array<[number, number]> = []
      children.forEach((child, id) => {
        if (child !== next) edges.push([id, child])
      })
      return edges.length === 0 ? next : table.identity(next, edges)
    })

  const sourceLevel = (alive: Alive): number =>
    withLevel('S', alive, () => {
      const prefixes = new Map<string, Prefix>()
      for (const m of aliveMatches(alive)) {
        for (const q of [...(m.srcIps ?? []), ...m.notSrcIps])
          prefixes.set(`${q.family}/${q.bytes.join('.')}/${q.length}`, q)
      }
      if (prefixes.size === 0) return identityLevel(alive)
      // Addresses under no configured prefix: every positive list fails, every negative one holds.
      const fallback = identityLevel(narrow(alive, (m) => m.srcIps === undefined))
      const sorted = [...prefixes.values()].sort((a, b) => a.length - b.length)
      const emitted: Array<[Prefix, number]> = []
      for (const p of sorted) {
        const child = identityLevel(
          narrow(
            alive,
            (m) =>
              (m.srcIps === undefined || m.srcIps.some((q) => prefixCovers(q, p))) &&
              !m.notSrcIps.some((q) => prefixCovers(q, p)),
          ),
        )
        // What the trie would answer for p without an edge of its own: the longest emitted prefix covering it.
        let inherited = fallback
        let best = -1
        for (const [q, c] of emitted) {
          if (q.length > best && prefixCovers(q, p)) {
            best = q.length
            inherited = c
          }
        }
        if (child !== inherited) emitted.push([p, child])
      }
      return emitted.length === 0 ? fallback : table.source(fallback, emitted)
    })

  const portLevel = (alive: Alive): number =>
    withLevel('P', alive, () => {
      const ports = new Set<number>()
      for (const m of aliveMatches(alive)) {
        for (const p of m.ports ?? []) ports.add(p)
        for (const p of m.notPorts) ports.add(p)
      }
      if (ports.size === 0) return sourceLevel(alive)
      const other = sourceLevel(narrow(alive, (m) => m.ports === undefined))
      const edges: Array<[number, number]> = []
      for (const port of [...ports].sort((a, b) => a - b)) {
        const child = sourceLevel(
          narrow(alive, (m) => (m.ports === undefined || m.ports.has(port)) && !m.notPorts.has(port)),
        )
        if (child !== other) edges.push([port, child])
      }
      return edges.length === 0 ? other : table.port(other, edges)
    })

  return portLevel(new Uint8Array(matches.length).fill(1))
}

function mostCommon(values: readonly number[]): number {
  const counts = new Map<number, number>()
  let best = values[0] as number
  let bestCount = 0
  for (const v of values) {
    const c = (counts.get(v) ?? 0) + 1
    counts.set(v, c)
    if (c > bestCount) {
      best = v
      bestCount = c
    }
  }
  return best
}
