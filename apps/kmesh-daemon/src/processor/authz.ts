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
  AuthzCompileError,
  type CompiledAuthz,
  compileAuthz,
  type ProtectedWorkload,
  type SourceIdentity,
} from '@kmesh-ts/authz-compiler'
import type { Authorization } from '@kmesh-ts/xds-client'
import { AUTHZ_MAX_POLICIES } from '@kmesh-ts/kernel-abi'
import type { Workload } from '../model/index.js'
import { drain, endsSlice, type Steps } from '../util/slices.js'

export { AuthzCompileError }

/** Where compiled sets go: the dataplane's AuthzMaps (or a test's). */
export interface AuthzSink {
  install(set: CompiledAuthz): { gen: number; records: number; ms: number }
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
  /** Per policy key: the kernel's counters since the daemon started (only policies with a nonzero counter). */
  counters?: Record<string, { allow: number; deny: number; dryRunDeny: number }>
  /** The defaults: no enforced ALLOW applied (allow), none matched (deny); dry-run ALLOW misses. */
  defaults?: { allow: number; deny: number; dryRunDeny: number }
  totals?: Record<string, number>
  unknownKeys?: Record<string, string[]>
}

const factsOf = (w: Workload): WorkloadFacts => ({
  uid: w.uid,
  namespace: w.namespace,
  node: w.node,
  addresses: w.workloadIps,
  authorizationPolicies: w.authorizationPolicies,
  identity: {
    trustDomain: w.trustDomain === '' ? 'cluster.local' : w.trustDomain,
    namespace: w.namespace,
    serviceAccount: w.serviceAccount === '' ? 'default' : w.serviceAccount,
  },
})

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
    for (const [k, v] of prepared.workloads) this.workloads.set(k, v)
    if (prepared.set) this.last = prepared.set
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
    let n = 0
    for (const w of change.upsertWorkloads ?? []) {
      if (endsSlice(++n)) yield
      this.workloads.set(w.uid, w)
    }
    for (const uid of change.removeWorkloads ?? []) this.workloads.delete(uid)
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
