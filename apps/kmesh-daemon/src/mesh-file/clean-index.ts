/**
 * The checks across entries (cross-check.ts) kept up to date with an edit instead of run over the whole file
 * again: one edit in a 110k-entry file spent ~350 ms on them. The index counts what the checks look at — keys,
 * references, addresses — for a file that passed them all, and answers for a changed set of entries whether the
 * file still passes them all: 'clean', 'dirty' (some check would report something), or 'unsure' where it keeps
 * no count (gateways to resolve, services with explicit endpoints: both need the whole file), and then the
 * caller runs the full checks. It never answers 'clean' where the full checks would report anything
 * (test/mesh-file-clean-index.test.ts holds the two equal over random files and edits).
 */
import { SPIFFE_SAN } from './cross-check.js'
import { policyKeyOf, serviceKeyOf } from '../model/keys.js'
import { workloadServicesProblem } from '../processor/kernel-fit.js'
import type { Policy, Service, Workload } from '../model/mesh.js'
import type { ResourceEdit } from '../model/delta.js'

export type Verdict = 'clean' | 'dirty' | 'unsure'

/** What one edit changes: the resources it takes out and the ones it puts in (a changed entry is both). */
export interface EntryDelta extends ResourceEdit {
  policies: { removed: readonly Policy[]; added: readonly Policy[] }
}

/** A multiset of strings that also counts how many of its members are there more than once. */
class Counts {
  private readonly n = new Map<string, number>()
  /** members counted more than once */
  repeated = 0

  add(key: string, by: 1 | -1): void {
    const before = this.n.get(key) ?? 0
    const after = before + by
    if (after === 0) this.n.delete(key)
    else this.n.set(key, after)
    if (before <= 1 && after > 1) this.repeated++
    else if (before > 1 && after <= 1) this.repeated--
  }

  has(key: string): boolean {
    return this.n.has(key)
  }
}

/**
 * A multiset of pairs (namespace and name, network and address), kept as a map per first member: no joined string
 * is built per entry (joining 200k keys was most of the index's cost). Equal pairs are equal joined keys as long
 * as no first member contains a '/' (the index is 'unsure' otherwise).
 */
class PairCounts {
  private readonly n = new Map<string, Map<string, number>>()
  repeated = 0

  add(a: string, b: string, by: 1 | -1): void {
    let inner = this.n.get(a)
    if (!inner) this.n.set(a, (inner = new Map()))
    const before = inner.get(b) ?? 0
    const after = before + by
    if (after === 0) {
      inner.delete(b)
      if (inner.size === 0) this.n.delete(a)
    } else inner.set(b, after)
    if (before <= 1 && after > 1) this.repeated++
    else if (before > 1 && after <= 1) this.repeated--
  }

  has(a: string, b: string): boolean {
    return this.n.get(a)?.has(b) ?? false
  }

  /** `a/b` as the checks across entries join it (split at the first '/'). */
  hasJoined(key: string): boolean {
    const at = key.indexOf('/')
    return at >= 0 && this.has(key.slice(0, at), key.slice(at + 1))
  }
}

function hasGateway(r: Workload | Service): boolean {
  if ('uid' in r) return r.waypoint !== undefined || r.networkGateway !== undefined
  return r.waypoint !== undefined || r.weightedWaypoints.length > 0
}

function hasEndpoints(s: Service): boolean {
  for (const _ in s.endpoints) return true
  return false
}

export class CleanIndex {
  private readonly uids = new Counts()
  private readonly serviceKeys = new PairCounts()
  private readonly policyKeys = new PairCounts()
  /** references from workloads' `services` and `authorizationPolicies` */
  private readonly serviceRefs = new Counts()
  private readonly policyRefs = new Counts()
  /** WorkloadSelector policies by key (keys are unique in a clean file) */
  private readonly selectorPolicies = new PairCounts()
  /** network and ip of workloads not on the host network, of service VIPs (once per service) */
  private readonly workloadAddresses = new PairCounts()
  private readonly vips = new PairCounts()
  /** entries that only the full checks can judge */
  private gateways = 0
  private explicitEndpoints = 0
  /** services and policies whose namespace has a '/': their joined keys are not pairs */
  private slashedNamespaces = 0

  /** The index of a file that passed the checks across entries. */
  constructor(workloads: readonly Workload[], services: readonly Service[], policies: readonly Policy[]) {
    for (const w of workloads) this.workload(w, 1)
    for (const s of services) this.service(s, 1)
    for (const p of policies) this.policy(p, 1)
  }

  /**
   * Whether a whole file's entries pass the checks across entries, as far as the counts can say ('unsure':
   * run them). The full reader asks this first: counting is several times cheaper than the checks, which then
   * run only to report what they find.
   */
  static verdictOf(workloads: readonly Workload[], services: readonly Service[], policies: readonly Policy[]): Verdict {
    return new CleanIndex([], [], []).apply({
      workloads: { removed: [], added: workloads },
      services: { removed: [], added: services },
      policies: { removed: [], added: policies },
    })
  }

  /**
   * Applies `delta` and says whether the file it makes passes the checks. The index then describes that file,
   * whatever the verdict: `revert` takes the same delta back.
   */
  apply(delta: EntryDelta): Verdict {
    this.update(delta, 1)
    return this.verdict(delta)
  }

  revert(delta: EntryDelta): void {
    this.update(delta, -1)
  }

  private update(delta: EntryDelta, by: 1 | -1): void {
    for (const w of delta.workloads.removed) this.workload(w, -by as 1 | -1)
    for (const s of delta.services.removed) this.service(s, -by as 1 | -1)
    for (const p of delta.policies.removed) this.policy(p, -by as 1 | -1)
    for (const w of delta.workloads.added) this.workload(w, by)
    for (const s of delta.services.added) this.service(s, by)
    for (const p of delta.policies.added) this.policy(p, by)
  }

  private verdict(delta: EntryDelta): Verdict {
    if (this.gateways > 0 || this.explicitEndpoints > 0 || this.slashedNamespaces > 0) return 'unsure'
    if (this.uids.repeated + this.serviceKeys.repeated + this.policyKeys.repeated > 0) return 'dirty'
    if (this.workloadAddresses.repeated + this.vips.repeated > 0) return 'dirty'
    // The file before the edit passed, so only what the edit touches can fail now.
    for (const w of delta.workloads.added) {
      if (workloadServicesProblem(Object.keys(w.services).length)) return 'dirty'
      for (const key of Object.keys(w.services)) if (!this.serviceKeys.hasJoined(key)) return 'dirty'
      for (const key of w.authorizationPolicies) if (!this.policyKeys.hasJoined(key)) return 'dirty'
    }
    // A service or policy gone (not edited in place) that a workload still names.
    for (const s of delta.services.removed) {
      if (this.serviceRefs.has(serviceKeyOf(s)) && !this.serviceKeys.has(s.namespace, s.hostname)) return 'dirty'
    }
    for (const p of delta.policies.removed) {
      if (this.policyRefs.has(policyKeyOf(p)) && !this.policyKeys.has(p.namespace, p.name)) return 'dirty'
    }
    for (const p of delta.policies.added) {
      if (p.scope === 'WorkloadSelector' && !this.policyRefs.has(policyKeyOf(p))) return 'dirty'
    }
    // A workload gone may leave a WorkloadSelector policy attached to nothing.
    for (const w of delta.workloads.removed) {
      for (const key of w.authorizationPolicies) {
        if (this.selectorPolicies.hasJoined(key) && !this.policyRefs.has(key)) return 'dirty'
      }
    }
    for (const s of delta.services.added) for (const san of s.subjectAltNames) if (!SPIFFE_SAN.test(san)) return 'dirty'
    return 'clean'
  }

  private workload(w: Workload, by: 1 | -1): void {
    this.uids.add(w.uid, by)
    for (const key of Object.keys(w.services)) this.serviceRefs.add(key, by)
    for (const key of w.authorizationPolicies) this.policyRefs.add(key, by)
    if (w.networkMode !== 'HostNetwork') for (const ip of w.workloadIps) this.workloadAddresses.add(w.network, ip, by)
    if (hasGateway(w)) this.gateways += by
  }

  private service(s: Service, by: 1 | -1): void {
    this.serviceKeys.add(s.namespace, s.hostname, by)
    if (s.namespace.includes('/')) this.slashedNamespaces += by
    // A service that lists one VIP twice is not a second owner of it.
    const vips = s.vips
    for (let i = 0; i < vips.length; i++) {
      const v = vips[i]!
      let again = false
      for (let j = 0; j < i && !again; j++) again = vips[j]!.ip === v.ip && vips[j]!.network === v.network
      if (!again) this.vips.add(v.network, v.ip, by)
    }
    if (hasGateway(s)) this.gateways += by
    if (hasEndpoints(s)) this.explicitEndpoints += by
  }

  private policy(p: Policy, by: 1 | -1): void {
    this.policyKeys.add(p.namespace, p.name, by)
    if (p.namespace.includes('/')) this.slashedNamespaces += by
    if (p.scope === 'WorkloadSelector') this.selectorPolicies.add(p.namespace, p.name, by)
  }
}
