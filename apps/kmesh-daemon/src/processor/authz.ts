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
  AUTHZ_LIMITS,
  AuthzCompileError,
  type CompiledAuthz,
  canonicalBytes,
  compileAuthz,
  identityKey,
  type ProtectedWorkload,
  type SourceIdentity,
} from '@kmesh-ts/authz-compiler'
import type { SourceRecord } from '@kmesh-ts/authz-compiler/kernel'
import type { Authorization } from '@kmesh-ts/xds-client'
import { AUTHZ_MAX_POLICIES } from '@kmesh-ts/kernel-abi'
import type { Workload } from '../model/index.js'
import { drain, endsSlice, type Steps } from '../util/slices.js'

export { AuthzCompileError }

/** Where compiled sets go: the dataplane's AuthzMaps (or a test's). */
export interface AuthzSink {
  install(set: CompiledAuthz): { gen: number; records: number; ms: number }
  /** Source addresses' identities changed in the installed set, in place (AuthzMaps.updateSources). */
  updateSources(
    put: readonly SourceRecord[],
    remove: readonly Uint8Array[],
  ): { gen: number; records: number; ms: number }
  slotCounters(slot: number): { allow: number; deny: number; dryRunDeny: number }
  resetSlot(slot: number): void
  totals(): Record<string, number>
}

/** What the compiler needs of a workload. */
interface WorkloadFacts {
  uid: string
  namespace: string
  node: string
  addresses: string[]
  authorizationPolicies: string[]
  identity: SourceIdentity
}

export interface AuthzStatus {
  enforced: boolean
  policies: number
  generation?: number
  compiled?: CompiledAuthz['counts']
  lastInstall?: { at: string; ms: number; records: number }
  lastRefusal?: { at: string; reason: string }
  /**
   * Workload changes applied in place since the last install (a workload this node does not protect, with an
   * identity the set knows: only its addresses' source identities change), and the last one.
   */
  sourceUpdates?: number
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

const factsOf = (w: Workload): WorkloadFacts => ({
  uid: w.uid,
  namespace: w.namespace,
  node: w.node,
  addresses: w.workloadIps,
  authorizationPolicies: w.authorizationPolicies,
  identity: identityOf(w),
})

/** A workload's distinct addresses as the compiler keys them (canonical bytes joined by '.'). */
function addressesOf(w: Workload): Map<string, Uint8Array> {
  const out = new Map<string, Uint8Array>()
  for (const ip of w.workloadIps) {
    const bytes = canonicalBytes(ip)
    out.set(bytes.join('.'), bytes)
  }
  return out
}

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
   * Canonical address → how many stored workloads hold it, for the in-place path: built when first needed after
   * a compile, kept through in-place changes, dropped whenever the workloads change otherwise.
   */
  private owners: Map<string, number> | undefined
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
    if (prepared.set && this.sink) {
      const r = this.sink.install(prepared.set)
      this.state.generation = r.gen
      this.state.lastInstall = { at: new Date().toISOString(), ms: Math.round(r.ms * 1000) / 1000, records: r.records }
      this.state.enforced = true
    }
    this.policies = prepared.policies
    this.workloads.clear()
    this.withNode = 0
    for (const [k, v] of prepared.workloads) {
      this.workloads.set(k, v)
      if (v.node !== '') this.withNode++
    }
    this.owners = undefined
    if (prepared.set) {
      this.last = prepared.set
      this.identityIds = undefined
      this.state.sourceUpdates = 0
    }
    this.state.policies = this.policies.size
    if (this.last) this.state.compiled = this.last.counts
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
    this.owners = undefined
    for (const w of change.upsertWorkloads ?? []) {
      if (endsSlice(++n)) yield
      this.setWorkload(w.uid, w)
    }
    for (const uid of change.removeWorkloads ?? []) this.setWorkload(uid, undefined)
    if (this.policies.size === 0 && this.last === undefined) return undefined
    try {
      this.commit(this.prepare({}))
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
  }

  /**
   * Applies a change without compiling when the installed set already decides it: every workload it touches
   * (before and after) is one this node does not protect, the new ones carry an identity the set knows, and
   * each of their addresses is held by that workload alone. Then the diagrams cannot change — only which
   * identity a source address has — and the kernel gets one update or delete per address that changed
   * (AuthzMaps.updateSources) instead of a new generation of the whole set. The result equals a full compile's
   * decisions (held by test/authz-in-place.kernel.test.ts). Returns false, having changed nothing, otherwise.
   */
  private updateInPlace(change: {
    upsertWorkloads?: readonly Workload[] | undefined
    removeWorkloads?: readonly string[] | undefined
  }): boolean {
    const last = this.last
    const nodeName = this.options.nodeName
    const upserts = change.upsertWorkloads ?? []
    const removes = change.removeWorkloads ?? []
    if (!last || !this.sink || nodeName === undefined || this.withNode === 0) return false
    if (upserts.length + removes.length > IN_PLACE_MAX) return false
    const owners = this.ownersIndex()
    const ids = this.identityIdsOf(last)
    // The change is planned on an overlay, so a refusal half-way leaves everything as it was.
    const overlay = new Map<string, Workload | undefined>()
    const ownerDelta = new Map<string, number>()
    /** Address → its identity id after the change (undefined: no workload holds it any more). */
    const final = new Map<string, { bytes: Uint8Array; id: number | undefined; before: number | undefined }>()
    const held = (k: string) => (owners.get(k) ?? 0) + (ownerDelta.get(k) ?? 0)
    let withNode = this.withNode
    const step = (uid: string, next: Workload | undefined): boolean => {
      const old = overlay.has(uid) ? overlay.get(uid) : this.workloads.get(uid)
      if (old?.node === nodeName || next?.node === nodeName) return false
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
    for (const { bytes, id, before } of final.values()) {
      if (id === undefined) {
        if (before !== undefined) remove.push(bytes)
      } else if (id !== before) put.push({ address: bytes, identity: id })
    }
    let added = 0
    for (const f of final.values()) added += (f.id !== undefined ? 1 : 0) - (f.before !== undefined ? 1 : 0)
    if (last.counts.sources + added > AUTHZ_LIMITS.sources) return false
    if (put.length + remove.length > 0) {
      const r = this.sink.updateSources(put, remove)
      this.state.lastSourceUpdate = {
        at: new Date().toISOString(),
        ms: Math.round(r.ms * 1000) / 1000,
        records: r.records,
      }
    }
    this.state.sourceUpdates = (this.state.sourceUpdates ?? 0) + 1
    last.counts.sources += added
    for (const [uid, w] of overlay) this.setWorkload(uid, w)
    for (const [k, d] of ownerDelta) {
      const n = (owners.get(k) ?? 0) + d
      if (n === 0) owners.delete(k)
      else owners.set(k, n)
    }
    return true
  }

  private ownersIndex(): Map<string, number> {
    if (!this.owners) {
      const owners = new Map<string, number>()
      for (const w of this.workloads.values())
        for (const k of addressesOf(w).keys()) owners.set(k, (owners.get(k) ?? 0) + 1)
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

  private compile(policies: Map<string, Authorization>, workloads: Map<string, Workload>): CompiledAuthz {
    const all = [...workloads.values()].map(factsOf)
    const nodeName = this.options.nodeName
    const anyNode = nodeName !== undefined && all.some((w) => w.node !== '')
    const protectedWorkloads: ProtectedWorkload[] = all
      .filter((w) => !anyNode || w.node === nodeName)
      .map((w) => ({ ...w, addresses: w.addresses }))
    for (const key of policies.keys()) this.slotOf(key)
    const set = compileAuthz({
      policies: policies.values(),
      workloads: protectedWorkloads,
      identities: all.flatMap((w) => w.addresses.map((address) => ({ address, identity: w.identity }))),
      rootNamespace: this.options.rootNamespace,
      slotOf: (key) => this.slotOf(key),
    })
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
