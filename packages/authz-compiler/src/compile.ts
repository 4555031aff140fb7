/**
 * Policies + the node's workloads → one generation of the authorization maps (include/authz.h), or a refusal
 * that names the limit. Every limit is the kernel maps' capacity for one generation or a bound on compile work;
 * nothing is ever truncated: a set that does not fit is refused whole and the last good set stays in force.
 */
import {
  AUTHZ_MAX_EDGES,
  AUTHZ_MAX_NODES,
  AUTHZ_MAX_POLICIES,
  AUTHZ_MAX_ROOTS,
  AUTHZ_MAX_SOURCES,
} from '@kmesh-ts/kernel-abi'
import { isV4Mapped, parseIp, unmapV4 } from '@kmesh-ts/ip'
import type { Authorization } from '@kmesh-ts/xds-client'
import { indexPolicies, isDeny, type PolicyIndex, type PolicyTarget, policiesFor, policyStore } from './applicable.js'
import { type AppliedPolicy, buildDiagram, IdentityUniverse, NodeTable } from './diagram.js'
import { ingestPolicy, type PolicyTests, type SourceIdentity } from './ingest.js'

/** A workload whose addresses the XDP program protects. */
export interface ProtectedWorkload extends PolicyTarget {
  /** Its addresses as text or bytes; v4-mapped IPv6 is folded to IPv4. */
  addresses: ReadonlyArray<string | Uint8Array>
}

/** A source address and the identity the mesh gives it (the workload that owns the address). */
export interface AddressIdentity {
  address: string | Uint8Array
  identity: SourceIdentity
}

export interface AuthzLimits {
  /** Policies stored on the node (one counter slot each). */
  policiesPerNode: number
  /** Policies applying to one workload (bounds the compile work per workload). */
  policiesPerWorkload: number
  /** Destination addresses with policies (km_authz_root, per generation). */
  roots: number
  /** Source addresses with an identity (km_authz_srcid, per generation). */
  sources: number
  /** Decision nodes (km_authz_node, per generation). */
  nodes: number
  /** Edges of each kind (km_authz_port, km_authz_src, km_authz_ident, per generation). */
  edges: number
}

export const AUTHZ_LIMITS: AuthzLimits = {
  policiesPerNode: AUTHZ_MAX_POLICIES,
  policiesPerWorkload: 4096,
  roots: AUTHZ_MAX_ROOTS,
  sources: AUTHZ_MAX_SOURCES,
  nodes: AUTHZ_MAX_NODES,
  edges: AUTHZ_MAX_EDGES,
}

export interface CompileInput {
  policies: Iterable<Authorization>
  workloads: Iterable<ProtectedWorkload>
  identities: Iterable<AddressIdentity>
  /** GLOBAL policies apply only from this namespace when given (istio-l4-authz.md §1.2). */
  rootNamespace?: string | undefined
  /** The stable counter slot (1..65536) of a policy key; the caller keeps slots across compiles. */
  slotOf: (policyKey: string) => number
  limits?: Partial<AuthzLimits> | undefined
}

export interface CompiledRoot {
  address: Uint8Array
  node: number
  workload: string
}

export interface CompiledAuthz {
  roots: CompiledRoot[]
  sources: Array<{ address: Uint8Array; identity: number }>
  /** The distinct identities, by id (0 = no identity). */
  identities: Array<SourceIdentity | undefined>
  table: NodeTable
  /** Policy key → slot, for every stored policy. */
  slots: Map<string, number>
  /** Keys workloads list that name no stored policy (skipped, as ztunnel does), per workload uid. */
  unknownKeys: Map<string, string[]>
  counts: {
    policies: number
    roots: number
    sources: number
    nodes: number
    portEdges: number
    sourceEdges: number
    identityEdges: number
  }
}

/** A set the kernel maps cannot hold, or a limit passed: refused whole. */
export class AuthzCompileError extends Error {
  constructor(
    readonly limit: keyof AuthzLimits,
    readonly needed: number,
    readonly allowed: number,
    detail: string,
  ) {
    super(
      `authorization policies refused: ${detail} (${needed} > limit ${limit} = ${allowed}); the last good set stays in force`,
    )
    this.name = 'AuthzCompileError'
  }
}

/** Canonical bytes: IPv4 as 4 bytes, a v4-mapped IPv6 address folded to IPv4 (§4.2). */
export function canonicalBytes(address: string | Uint8Array): Uint8Array {
  const bytes = typeof address === 'string' ? parseIp(address) : address
  if (bytes.length !== 4 && bytes.length !== 16)
    throw new RangeError(`an address is 4 or 16 bytes, got ${bytes.length}`)
  return bytes.length === 16 && isV4Mapped(bytes) ? unmapV4(bytes) : bytes
}

/**
 * How the set keys a canonical address: IPv4 as its 32-bit number, IPv6 as text (the two never collide), so the
 * 100k addresses of a mesh cost no string each.
 */
export function addressKey(bytes: Uint8Array): number | string {
  return bytes.length === 4
    ? (bytes[0] as number) * 0x1000000 +
        (((bytes[1] as number) << 16) | ((bytes[2] as number) << 8) | (bytes[3] as number))
    : bytes.join('.')
}

/** The text an identity is known by in a set: equal identities share one id. */
export const identityKey = (i: SourceIdentity): string => `${i.trustDomain}/ns/${i.namespace}/sa/${i.serviceAccount}`

export function compileAuthz(input: CompileInput): CompiledAuthz {
  const limits = { ...AUTHZ_LIMITS, ...input.limits }
  const store = policyStore(input.policies)
  if (store.size > limits.policiesPerNode) {
    throw new AuthzCompileError(
      'policiesPerNode',
      store.size,
      limits.policiesPerNode,
      `${store.size} policies are stored on this node`,
    )
  }
  const index = indexPolicies(store, input.rootNamespace)
  const slots = new Map<string, number>()
  const tests = new Map<string, PolicyTests>()
  for (const key of store.keys()) slots.set(key, input.slotOf(key))

  // Source identities: one id per distinct identity, 0 for none.
  const identities: Array<SourceIdentity | undefined> = [undefined]
  const identityIds = new Map<string, number>()
  // Callers often hand the same identity object for many addresses: its id without building its key again.
  const idOfObject = new Map<SourceIdentity, number>()
  const sourceByAddress = new Map<number | string, { address: Uint8Array; identity: number }>()
  for (const { address, identity } of input.identities) {
    let id = idOfObject.get(identity)
    if (id === undefined) {
      const k = identityKey(identity)
      id = identityIds.get(k)
      if (id === undefined) {
        id = identities.push(identity) - 1
        identityIds.set(k, id)
      }
      idOfObject.set(identity, id)
    }
    const bytes = canonicalBytes(address)
    sourceByAddress.set(addressKey(bytes), { address: bytes, identity: id })
  }
  if (sourceByAddress.size > limits.sources) {
    throw new AuthzCompileError(
      'sources',
      sourceByAddress.size,
      limits.sources,
      `${sourceByAddress.size} source addresses carry an identity`,
    )
  }

  const roots = new RootBuilder(store, index, slots, tests, new IdentityUniverse(identities), limits)
  for (const workload of input.workloads) roots.add(workload)
  roots.checkRoots()
  const table = roots.table
  const unknownKeys = roots.unknownKeys
  checkEdges(table, limits)
  const set: CompiledAuthz = {
    roots: [...roots.byAddress.values()],
    sources: [...sourceByAddress.values()],
    identities,
    table,
    slots,
    unknownKeys,
    counts: {
      policies: store.size,
      roots: roots.byAddress.size,
      sources: sourceByAddress.size,
      nodes: table.nodeCount,
      portEdges: table.portEdges.length,
      sourceEdges: table.sourceEdges.length,
      identityEdges: table.identityEdges.length,
    },
  }
  builders.set(set, roots)
  return set
}

/** What compiled each set, kept so its protected workloads can change without compiling the set again. */
const builders = new WeakMap<CompiledAuthz, RootBuilder>()

/**
 * Builds the roots of protected workloads into one node table: the policies that apply to each, their diagram
 * per address (interned, so workloads alike share nodes), the keys they list that name no policy.
 */
class RootBuilder {
  readonly table = new NodeTable()
  /** By address: two protected workloads that share an address make one root, the later workload's (as
   * km_authz_srcid keeps the later workload's identity). */
  readonly byAddress = new Map<number | string, CompiledRoot>()
  readonly unknownKeys = new Map<string, string[]>()
  /** Workloads with the same policies at an address that decides their destination tests alike share a root. */
  readonly #rootCache = new Map<string, number>()

  constructor(
    private readonly store: Map<string, Authorization>,
    private readonly index: PolicyIndex,
    private readonly slots: Map<string, number>,
    private readonly tests: Map<string, PolicyTests>,
    private readonly universe: IdentityUniverse,
    readonly limits: AuthzLimits,
  ) {}

  /** Refuses more protected addresses than km_authz_root holds. */
  checkRoots(): void {
    const n = this.byAddress.size
    if (n > this.limits.roots)
      throw new AuthzCompileError('roots', n, this.limits.roots, `${n} workload addresses have policies`)
  }

  /** The roots of one protected workload (none when no policy applies to it); returns them. */
  add(workload: ProtectedWorkload): CompiledRoot[] {
    const { keys, unknown } = policiesFor(this.index, workload)
    if (unknown.length > 0) this.unknownKeys.set(workload.uid, unknown)
    else this.unknownKeys.delete(workload.uid)
    if (keys.length === 0) return []
    const limits = this.limits
    if (keys.length > limits.policiesPerWorkload) {
      throw new AuthzCompileError(
        'policiesPerWorkload',
        keys.length,
        limits.policiesPerWorkload,
        `${keys.length} policies apply to workload ${workload.uid}`,
      )
    }
    const applied: AppliedPolicy[] = keys.map((key) => {
      const p = this.store.get(key) as Authorization
      let t = this.tests.get(key)
      if (!t) {
        t = ingestPolicy(p)
        this.tests.set(key, t)
      }
      return { key, slot: this.slots.get(key) as number, deny: isDeny(p), dryRun: p.dryRun, tests: t }
    })
    const added: CompiledRoot[] = []
    for (const raw of workload.addresses) {
      const address = canonicalBytes(raw)
      const cacheKey = `${keys.join('\n')}\n@${address.join('.')}`
      let node = this.#rootCache.get(cacheKey)
      if (node === undefined) {
        node = buildDiagram(this.table, this.universe, applied, address)
        this.#rootCache.set(cacheKey, node)
      }
      const root = { address, node, workload: workload.uid }
      this.byAddress.set(addressKey(address), root)
      added.push(root)
      if (this.table.nodeCount > limits.nodes) {
        throw new AuthzCompileError(
          'nodes',
          this.table.nodeCount,
          limits.nodes,
          `the decision diagrams need more nodes than km_authz_node holds (at workload ${workload.uid})`,
        )
      }
    }
    return added
  }
}

/** What updateRoots changed in a set: its new roots, the addresses that lost theirs, where the table grew from. */
export interface RootsUpdate {
  /** Roots added or given another node. */
  roots: CompiledRoot[]
  /** Addresses whose root is gone. */
  removed: Uint8Array[]
  /** The table's first new node (local id) and first new edge of each kind: everything from there on is new. */
  from: { node: number; portEdge: number; sourceEdge: number; identityEdge: number }
}

/**
 * Changes which workloads a compiled set protects, in the set itself: `remove` loses the roots it holds (by
 * address and uid), then each of `upsert` gets the roots a whole compile would give it, its diagrams built into
 * the set's table (which only grows: nodes no root reaches any more stay until the next whole compile). For what
 * the set already decides: the policies and the identities are the set's own, so every new diagram equals a
 * whole compile's. Throws AuthzCompileError when a limit is passed (the set is then not to be installed as it is:
 * compile whole); undefined when the set was not made by compileAuthz in this process.
 */
export function updateRoots(
  set: CompiledAuthz,
  remove: ReadonlyArray<{ uid: string; addresses: ReadonlyArray<string | Uint8Array> }>,
  upsert: readonly ProtectedWorkload[],
): RootsUpdate | undefined {
  const builder = builders.get(set)
  if (!builder) return undefined
  const table = builder.table
  const from = {
    node: table.nodes.length,
    portEdge: table.portEdges.length,
    sourceEdge: table.sourceEdges.length,
    identityEdge: table.identityEdges.length,
  }
  const removed = new Map<number | string, Uint8Array>()
  for (const w of remove) {
    builder.unknownKeys.delete(w.uid)
    for (const raw of w.addresses) {
      const address = canonicalBytes(raw)
      const k = addressKey(address)
      if (builder.byAddress.get(k)?.workload !== w.uid) continue
      builder.byAddress.delete(k)
      removed.set(k, address)
    }
  }
  const roots: CompiledRoot[] = []
  for (const w of upsert) {
    for (const root of builder.add(w)) {
      removed.delete(addressKey(root.address))
      roots.push(root)
    }
  }
  builder.checkRoots()
  checkEdges(table, builder.limits)
  set.roots = [...builder.byAddress.values()]
  set.counts.roots = builder.byAddress.size
  set.counts.nodes = table.nodeCount
  set.counts.portEdges = table.portEdges.length
  set.counts.sourceEdges = table.sourceEdges.length
  set.counts.identityEdges = table.identityEdges.length
  return { roots, removed: [...removed.values()], from }
}

function checkEdges(table: NodeTable, limits: AuthzLimits): void {
  const edgeKinds = [
    ['km_authz_port', table.portEdges.length],
    ['km_authz_src', table.sourceEdges.length],
    ['km_authz_ident', table.identityEdges.length],
  ] as const
  for (const [map, n] of edgeKinds) {
    if (n > limits.edges)
      throw new AuthzCompileError('edges', n, limits.edges, `the decision diagrams need ${n} entries in ${map}`)
  }
}
