/**
 * The policy store and its way into the kernel: the policies a source gave (mesh file or istiod, in wire form),
 * the workloads the compiler needs (their addresses, namespaces, listed policies and identities), compiled whole
 * into a new generation of the authorization maps and swapped in (@kmesh-ts/authz-compiler). A set the kernel
 * cannot hold is refused with the limit it passes (mesh file: refused; xDS: NACK) and the last good set stays.
 *
 * Which workloads are protected: those on this node (`node` equal to the daemon's node name) when any workload
 * names a node; otherwise every workload of the mesh (local mode). Identities: every workload address, with
 * ztunnel's defaults (empty trust domain → cluster.local, empty service account → default).
 */
import {
  type AddressIdentity,
  AUTHZ_LIMITS,
  AuthzCompileError,
  addressKey,
  type CompiledAuthz,
  canonicalBytes,
  compileAuthz,
  identityKey,
  type ProtectedWorkload,
  type RootsUpdate,
  type SourceIdentity,
  updateRoots,
} from '@kmesh-ts/authz-compiler'
import type { InPlaceChange, SourceRecord } from '@kmesh-ts/authz-compiler/kernel'
import type { Authorization } from '@kmesh-ts/xds-client'
import { AUTHZ_MAX_POLICIES } from '@kmesh-ts/kernel-abi'
import type { Workload } from '../model/index.js'
import { drain, endsSlice, type Steps } from '../util/slices.js'

export { AuthzCompileError }

/** Where compiled sets go: the dataplane's AuthzMaps (or a test's). */
export interface AuthzSink {
  install(set: CompiledAuthz): { gen: number; records: number; ms: number }
  /** The installed set changed in place (AuthzMaps.update). */
  update(set: CompiledAuthz, change: InPlaceChange): { gen: number; records: number; ms: number }
  slotCounters(slot: number): { allow: number; deny: number; dryRunDeny: number }
  resetSlot(slot: number): void
  totals(): Record<string, number>
}

export interface AuthzStatus {
  enforced: boolean
  policies: number
  generation?: number
  compiled?: CompiledAuthz['counts']
  lastInstall?: { at: string; ms: number; records: number }
  lastRefusal?: { at: string; reason: string }
  /**
   * Workload changes applied in place since the last install (workloads with an identity the set knows, each
   * holding its addresses alone: their addresses' identities change, and the roots of those this node protects),
   * and the last one.
   */
  sourceUpdates?: number
  /** Of those, the changes to workloads this node protects (their roots changed in place too). */
  rootUpdates?: number
  lastSourceUpdate?: { at: string; ms: number; records: number }
  /** Per policy key: the kernel's counters since the daemon started (only policies with a nonzero counter). */
  counters?: Record<string, { allow: number; deny: number; dryRunDeny: number }>
  /** The defaults: no enforced ALLOW applied (allow), none matched (deny); dry-run ALLOW misses. */
  defaults?: { allow: number; deny: number; dryRunDeny: number }
  totals?: Record<string, number>
  unknownKeys?: Record<string, string[]>
}

const identityOf = (w: Workload): SourceIdentity => ({
  trustDomain: w.trustDomain === '' ? 'cluster.local' : w.trustDomain,
  namespace: w.namespace,
  serviceAccount: w.serviceAccount === '' ? 'default' : w.serviceAccount,
})

/** A workload's distinct addresses as the compiler keys them (addressKey of the canonical bytes). */
function addressesOf(w: Workload): Map<number | string, Uint8Array> {
  const out = new Map<number | string, Uint8Array>()
  forEachAddress(w, (k, bytes) => out.set(k, bytes))
  return out
}

/** addressesOf without the map: most workloads have one address, which costs nothing more than its parse. */
function forEachAddress(w: Workload, visit: (k: number | string, bytes: Uint8Array) => void): void {
  const ips = w.workloadIps
  if (ips.length === 1) {
    const bytes = canonicalBytes(ips[0] as string)
    visit(addressKey(bytes), bytes)
    return
  }
  const seen = new Set<number | string>()
  for (const ip of ips) {
    const bytes = canonicalBytes(ip)
    const k = addressKey(bytes)
    if (!seen.has(k)) {
      seen.add(k)
      visit(k, bytes)
    }
  }
}

/** One identity object per distinct identity, so the compiler numbers 100k addresses without a key string each. */
class IdentityObjects {
  readonly #byDomain = new Map<string, Map<string, Map<string, SourceIdentity>>>()

  of(w: Workload): SourceIdentity {
    let byNamespace = this.#byDomain.get(w.trustDomain)
    if (!byNamespace) this.#byDomain.set(w.trustDomain, (byNamespace = new Map()))
    let byAccount = byNamespace.get(w.namespace)
    if (!byAccount) byNamespace.set(w.namespace, (byAccount = new Map()))
    let identity = byAccount.get(w.serviceAccount)
    if (!identity) byAccount.set(w.serviceAccount, (identity = identityOf(w)))
    return identity
  }
}

const sameList = (a: readonly string[], b: readonly string[]) => a.length === b.length && a.every((x, i) => x === b[i])

/** Two versions of a workload the compiler sees alike (node, namespace, addresses, listed keys, identity). */
const sameAuthzFacts = (a: Workload, b: Workload): boolean =>
  a.node === b.node &&
  a.namespace === b.namespace &&
  a.trustDomain === b.trustDomain &&
  a.serviceAccount === b.serviceAccount &&
  sameList(a.workloadIps, b.workloadIps) &&
  sameList(a.authorizationPolicies, b.authorizationPolicies)

function countOwner(owners: Map<number | string, number>, k: number | string, d: number): void {
  const n = (owners.get(k) ?? 0) + d
  if (n === 0) owners.delete(k)
  else owners.set(k, n)
}

/** Counts (d = 1) or uncounts (d = -1) a workload as the owner of each of its addresses. */
const countOwnerOf = (owners: Map<number | string, number>, w: Workload, d: number): void =>
  forEachAddress(w, (k) => countOwner(owners, k, d))

/** When and what a kernel write did, for the status. */
const stamp = (r: { ms: number; records: number }) => ({
  at: new Date().toISOString(),
  ms: Math.round(r.ms * 1000) / 1000,
  records: r.records,
})

/** Bigger changes (a push) are compiled whole: the in-place path is for the steady trickle of single changes. */
const IN_PLACE_MAX = 64

export class AuthzProcessor {
  private policies = new Map<string, Authorization>()
  /**
   * The workloads as the mesh holds them (their facts are taken when a set is compiled: with no policy, a push
   * of 100k workloads costs a map entry each here, not a copy)
   */
  private readonly workloads = new Map<string, Workload>()
  /** Stable counter slots per policy key for the life of the daemon (1..65,536), freed slots reused. */
  private readonly slots = new Map<string, number>()
  private readonly freeSlots: number[] = []
  private highestSlot = 0
  private last: CompiledAuthz | undefined
  private readonly state: AuthzStatus = { enforced: false, policies: 0 }
  /** How many stored workloads name a node (the compile protects by node only when one does). */
  private withNode = 0
  /**
   * Canonical address → how many stored workloads hold it, for the in-place path: built by every compile, kept
   * through every workload change after it; dropped when a whole new store is committed (built again when next
   * needed).
   */
  private owners: Map<number | string, number> | undefined
  /** The owners of the addresses of the store each set was compiled from (see compile). */
  private readonly ownersOf = new WeakMap<CompiledAuthz, Map<number | string, number>>()
  /** The installed set's table size when it was compiled (updateRoots only adds to it). */
  private nodesCompiled = 0
  /** False once an in-place change failed part-way: the installed set is then replaced whole. */
  private inPlaceUsable = true
  /** The installed set's identity ids by identityKey (built when first needed). */
  private identityIds: Map<string, number> | undefined

  constructor(
    private readonly sink: AuthzSink | undefined,
    private readonly options: { nodeName?: string | undefined; rootNamespace?: string | undefined } = {},
  ) {}

  get policyCount(): number {
    return this.policies.size
  }

  /** The policies in force, by key `<namespace>/<name>` (read-only: changes go through prepare/commit). */
  policyList(): ReadonlyMap<string, Authorization> {
    return this.policies
  }

  /**
   * Compiles the whole store as it would be after the change, without touching anything: throws
   * AuthzCompileError when the set does not fit. `commit` then installs it.
   */
  prepare(change: {
    policies?: Authorization[]
    addPolicies?: Authorization[]
    removePolicies?: string[]
    workloads?: Workload[]
    upsertWorkloads?: Workload[]
    removeWorkloads?: string[]
  }): PreparedAuthz {
    const policies = change.policies
      ? new Map(change.policies.map((p) => [`${p.namespace}/${p.name}`, p]))
      : new Map(this.policies)
    for (const p of change.addPolicies ?? []) policies.set(`${p.namespace}/${p.name}`, p)
    for (const key of change.removePolicies ?? []) policies.delete(key)
    const workloads = change.workloads ? new Map(change.workloads.map((w) => [w.uid, w])) : new Map(this.workloads)
    for (const w of change.upsertWorkloads ?? []) workloads.set(w.uid, w)
    for (const uid of change.removeWorkloads ?? []) workloads.delete(uid)
    const set = policies.size === 0 && this.last === undefined ? undefined : this.compile(policies, workloads)
    return { policies, workloads, set }
  }

  /** Installs a prepared set (when it has one) and makes it the store. */
  commit(prepared: PreparedAuthz): void {
    if (prepared.set) this.installSet(prepared.set)
    this.policies = prepared.policies
    this.workloads.clear()
    this.withNode = 0
    for (const [k, v] of prepared.workloads) {
      this.workloads.set(k, v)
      if (v.node !== '') this.withNode++
    }
    this.owners = prepared.set ? this.ownersOf.get(prepared.set) : undefined
    this.state.policies = this.policies.size
  }

  /** Installs a compiled set (when there is a kernel) and makes it the one in force. */
  private installSet(set: CompiledAuthz): void {
    if (this.sink) {
      const r = this.sink.install(set)
      this.state.generation = r.gen
      this.state.lastInstall = stamp(r)
      this.state.enforced = true
    }
    this.last = set
    this.identityIds = undefined
    this.nodesCompiled = set.table.nodeCount
    this.inPlaceUsable = true
    this.state.sourceUpdates = 0
    this.state.rootUpdates = 0
    this.state.compiled = set.counts
  }

  /**
   * Workloads changed (cluster mode): their facts are taken whatever happens, and the set is recompiled and
   * installed when there are policies. A set that no longer fits is not installed (the last one stays); the
   * reason is returned for the log and the status.
   */
  workloadsChanged(change: {
    upsertWorkloads?: readonly Workload[] | undefined
    removeWorkloads?: readonly string[] | undefined
  }): string | undefined {
    return drain(this.workloadsChangedSteps(change))
  }

  /** workloadsChanged, yielding every SLICE workloads while their facts are taken (a full push has 100k). */
  *workloadsChangedSteps(change: {
    upsertWorkloads?: readonly Workload[] | undefined
    removeWorkloads?: readonly string[] | undefined
  }): Steps<string | undefined> {
    if (this.updateInPlace(change)) return undefined
    let n = 0
    // Counted again by the compile below (a push of 100k workloads is not worth counting one by one).
    this.owners = undefined
    // The store moves ahead of the installed set here: until a set compiled from it is installed (a refusal or a
    // failed install leaves the old one), nothing may be changed in place against the old one.
    this.inPlaceUsable = false
    for (const w of change.upsertWorkloads ?? []) {
      if (endsSlice(++n)) yield
      this.setWorkload(w.uid, w)
    }
    for (const uid of change.removeWorkloads ?? []) this.setWorkload(uid, undefined)
    if (this.policies.size === 0 && this.last === undefined) return undefined
    try {
      // The store is already this change's: compiled as it is, without the copies prepare/commit make.
      const set = this.compile(this.policies, this.workloads)
      this.installSet(set)
      this.owners = this.ownersOf.get(set)
      return undefined
    } catch (err) {
      if (!(err instanceof AuthzCompileError)) throw err
      this.refused(err.message)
      return err.message
    }
  }

  private setWorkload(uid: string, w: Workload | undefined): void {
    const old = this.workloads.get(uid)
    if (old && old.node !== '') this.withNode--
    if (w) {
      this.workloads.set(uid, w)
      if (w.node !== '') this.withNode++
    } else this.workloads.delete(uid)
    const owners = this.owners
    if (owners && !(old && w && sameList(old.workloadIps, w.workloadIps))) {
      if (old) countOwnerOf(owners, old, -1)
      if (w) countOwnerOf(owners, w, 1)
    }
  }

  /**
   * Applies a change without compiling the set again when the set already decides it: every workload it touches
   * either changed nothing the set is compiled from (its health, its services), or carries an identity the set
   * knows and holds each of its addresses alone. Then the identities are the set's and the policies too: only
   * which identity a source address has changes, and for a workload this node protects (before or after), the
   * roots of its addresses, whose diagrams updateRoots builds into the set's table exactly as a whole compile
   * would. The kernel gets the new nodes and edges, then one update or delete per root and per address that
   * changed (AuthzMaps.update), instead of a new generation of the whole set. The result decides as a whole
   * compile does (held by test/authz-in-place.kernel.test.ts). Returns false, having changed nothing, otherwise
   * (the table aside, after a refusal: then the next change compiles whole).
   */
  private updateInPlace(change: {
    upsertWorkloads?: readonly Workload[] | undefined
    removeWorkloads?: readonly string[] | undefined
  }): boolean {
    const last = this.last
    const nodeName = this.options.nodeName
    const upserts = change.upsertWorkloads ?? []
    const removes = change.removeWorkloads ?? []
    if (!last || !this.sink || !this.inPlaceUsable || nodeName === undefined || this.withNode === 0) return false
    if (upserts.length + removes.length > IN_PLACE_MAX) return false
    const owners = this.ownersIndex()
    const ids = this.identityIdsOf(last)
    // The change is planned on an overlay, so a refusal half-way leaves everything as it was.
    const overlay = new Map<string, Workload | undefined>()
    const ownerDelta = new Map<number | string, number>()
    /** Address → its identity id after the change (undefined: no workload holds it any more). */
    const final = new Map<number | string, { bytes: Uint8Array; id: number | undefined; before: number | undefined }>()
    const held = (k: number | string) => (owners.get(k) ?? 0) + (ownerDelta.get(k) ?? 0)
    /** Workloads whose addresses or identity changed (not those the set sees alike). */
    const touched = new Set<string>()
    let withNode = this.withNode
    const step = (uid: string, next: Workload | undefined): boolean => {
      const old = overlay.has(uid) ? overlay.get(uid) : this.workloads.get(uid)
      // Health, services, locality…: nothing the set is compiled from (a protected workload's too).
      if (old && next && sameAuthzFacts(old, next)) {
        overlay.set(uid, next)
        return true
      }
      touched.add(uid)
      if (old && old.node !== '') withNode--
      if (next && next.node !== '') withNode++
      const nextId = next ? ids.get(identityKey(identityOf(next))) : undefined
      if (next && nextId === undefined) return false
      const oldId = old ? ids.get(identityKey(identityOf(old))) : undefined
      if (old) {
        for (const [k, bytes] of addressesOf(old)) {
          if (held(k) !== 1) return false
          ownerDelta.set(k, (ownerDelta.get(k) ?? 0) - 1)
          const f = final.get(k)
          final.set(k, { bytes, id: undefined, before: f ? f.before : oldId })
        }
      }
      if (next) {
        for (const [k, bytes] of addressesOf(next)) {
          if (held(k) !== 0) return false
          ownerDelta.set(k, (ownerDelta.get(k) ?? 0) + 1)
          const f = final.get(k)
          final.set(k, { bytes, id: nextId, before: f ? f.before : undefined })
        }
      }
      overlay.set(uid, next)
      return true
    }
    for (const w of upserts) if (!step(w.uid, w)) return false
    for (const uid of removes) if (!step(uid, undefined)) return false
    if (withNode === 0) return false
    const put: SourceRecord[] = []
    const remove: Uint8Array[] = []
    /** source addresses after the change less before it */
    let added = 0
    for (const { bytes, id, before } of final.values()) {
      added += (id !== undefined ? 1 : 0) - (before !== undefined ? 1 : 0)
      if (id === undefined) {
        if (before !== undefined) remove.push(bytes)
      } else if (id !== before) put.push({ address: bytes, identity: id })
    }
    if (last.counts.sources + added > AUTHZ_LIMITS.sources) return false
    // Workloads this node protects, before and after: their roots change with them.
    const unprotect: Array<{ uid: string; addresses: string[] }> = []
    const protect: ProtectedWorkload[] = []
    for (const uid of touched) {
      const before = this.workloads.get(uid)
      const after = overlay.get(uid)
      if (before?.node === nodeName) unprotect.push({ uid, addresses: before.workloadIps })
      if (after?.node === nodeName)
        protect.push({
          uid,
          namespace: after.namespace,
          authorizationPolicies: after.authorizationPolicies,
          addresses: after.workloadIps,
        })
    }
    let roots: RootsUpdate | undefined
    if (unprotect.length + protect.length > 0) {
      // Nodes no root reaches stay in the table until a whole compile: past twice the compiled size, compile.
      if (last.table.nodeCount > 2 * this.nodesCompiled + 256) return false
      try {
        roots = updateRoots(last, unprotect, protect)
      } catch (err) {
        if (!(err instanceof AuthzCompileError)) throw err
        roots = undefined
      }
      if (!roots) {
        // The set's table may be part-way changed: it is no longer one to change in place; a whole compile decides.
        this.inPlaceUsable = false
        return false
      }
    }
    if (put.length + remove.length > 0 || roots) {
      let r: { ms: number; records: number }
      try {
        r = this.sink.update(last, { roots, sources: { put, remove } })
      } catch (err) {
        this.inPlaceUsable = false
        throw err
      }
      this.state.lastSourceUpdate = stamp(r)
    }
    this.state.sourceUpdates = (this.state.sourceUpdates ?? 0) + 1
    if (roots) this.state.rootUpdates = (this.state.rootUpdates ?? 0) + 1
    last.counts.sources += added
    // setWorkload counts the owners (the delta above was the plan's own).
    for (const [uid, w] of overlay) this.setWorkload(uid, w)
    return true
  }

  private ownersIndex(): Map<number | string, number> {
    if (!this.owners) {
      const owners = new Map<number | string, number>()
      for (const w of this.workloads.values()) countOwnerOf(owners, w, 1)
      this.owners = owners
    }
    return this.owners
  }

  private identityIdsOf(set: CompiledAuthz): Map<string, number> {
    if (!this.identityIds) {
      this.identityIds = new Map()
      set.identities.forEach((identity, id) => {
        if (identity) this.identityIds?.set(identityKey(identity), id)
      })
    }
    return this.identityIds
  }

  /** Records a refusal for the status (the caller logs and NACKs or refuses the file). */
  refused(reason: string): void {
    this.state.lastRefusal = { at: new Date().toISOString(), reason }
  }

  /**
   * Compiles the store as given, in one pass over the workloads: the protected ones, every address with its
   * identity (parsed once), and the owners of each address for the in-place path (`ownersOf` the set, taken
   * by whoever makes it the one in force).
   */
  private compile(policies: Map<string, Authorization>, workloads: Map<string, Workload>): CompiledAuthz {
    const nodeName = this.options.nodeName
    let anyNode = false
    if (nodeName !== undefined)
      for (const w of workloads.values())
        if (w.node !== '') {
          anyNode = true
          break
        }
    const protectedWorkloads: ProtectedWorkload[] = []
    const identities: AddressIdentity[] = []
    const owners = new Map<number | string, number>()
    const identityObjects = new IdentityObjects()
    for (const w of workloads.values()) {
      const identity = identityObjects.of(w)
      const isProtected = !anyNode || w.node === nodeName
      const addresses: Uint8Array[] = []
      forEachAddress(w, (k, address) => {
        countOwner(owners, k, 1)
        identities.push({ address, identity })
        if (isProtected) addresses.push(address)
      })
      if (isProtected)
        protectedWorkloads.push({
          uid: w.uid,
          namespace: w.namespace,
          authorizationPolicies: w.authorizationPolicies,
          addresses,
        })
    }
    for (const key of policies.keys()) this.slotOf(key)
    const set = compileAuthz({
      policies: policies.values(),
      workloads: protectedWorkloads,
      identities,
      rootNamespace: this.options.rootNamespace,
      slotOf: (key) => this.slotOf(key),
    })
    this.ownersOf.set(set, owners)
    // Slots of policies gone from the store are freed only once the set without them compiled.
    for (const key of [...this.slots.keys()]) {
      if (!policies.has(key)) {
        this.freeSlots.push(this.slots.get(key) as number)
        this.slots.delete(key)
      }
    }
    return set
  }

  private slotOf(key: string): number {
    let slot = this.slots.get(key)
    if (slot === undefined) {
      slot = this.freeSlots.pop() ?? ++this.highestSlot
      if (slot > AUTHZ_MAX_POLICIES)
        throw new AuthzCompileError('policiesPerNode', slot, AUTHZ_MAX_POLICIES, 'no policy counter slot is left')
      this.slots.set(key, slot)
      // A slot may have counted another policy (this run or an earlier daemon's): this one starts from zero.
      this.sink?.resetSlot(slot)
    }
    return slot
  }

  status(): AuthzStatus {
    const out: AuthzStatus = { ...this.state }
    if (this.sink && this.last) {
      const counters: Record<string, { allow: number; deny: number; dryRunDeny: number }> = {}
      for (const [key, slot] of this.slots) {
        const c = this.sink.slotCounters(slot)
        if (c.allow + c.deny + c.dryRunDeny > 0) counters[key] = c
      }
      out.counters = counters
      out.defaults = this.sink.slotCounters(0)
      out.totals = this.sink.totals()
      if (this.last.unknownKeys.size > 0) out.unknownKeys = Object.fromEntries(this.last.unknownKeys)
    }
    return out
  }
}

/** A change to the store: a whole new store (`policies`, `workloads`) or additions and removals. */
export interface AuthzChange {
  policies?: readonly Authorization[]
  addPolicies?: readonly Authorization[]
  removePolicies?: readonly string[]
  workloads?: readonly Workload[]
  upsertWorkloads?: readonly Workload[] | undefined
  removeWorkloads?: readonly string[] | undefined
}

export interface PreparedAuthz {
  policies: Map<string, Authorization>
  workloads: Map<string, Workload>
  /** undefined: there is nothing to enforce and nothing was ever installed. */
  set: CompiledAuthz | undefined
}
