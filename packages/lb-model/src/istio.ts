/**
 * Istio's load-balancing semantics at the mesh level (docs/reference/istio-workload-api.md §1.4 item 4, §3.6): from
 * Kubernetes Service settings to a `LoadBalancing`, and from a service, a client and its endpoints to the
 * choice, twice: as ztunnel makes it (`ztunnelChoice`, the specification) and as the kmesh-ts kernel will make
 * it from the maps the daemon writes (`kernelChoice`: health filter, capacity 0, `endpointPriority`,
 * `endpointSlots`, `lbPolicyOf`, then the kernel's bucket rule). The table test shows the two equal.
 */
import { endpointPriority, lbPolicyOf, PRIO_COUNT, type LoadBalancing } from './priority.js'
import { localityRank, maxRank, type PeerInfo } from './rank.js'
import { choosePriority } from './select.js'
import { endpointSlots } from './weights.js'

export type HealthPolicy = 'OnlyHealthy' | 'AllowAll'
export interface ServiceLoadBalancing extends LoadBalancing {
  healthPolicy?: HealthPolicy | undefined
}

/** The Kubernetes Service fields istiod turns into `LoadBalancing`. */
export interface KubernetesServiceSettings {
  internalTrafficPolicy?: 'Cluster' | 'Local'
  /** PreferClose is the older name of PreferSameZone. */
  trafficDistribution?: 'PreferClose' | 'PreferSameZone' | 'PreferSameNode'
  publishNotReadyAddresses?: boolean
}

/**
 * istiod's mapping (`constructService`, docs/reference/istio-workload-api.md §1.4): internalTrafficPolicy Local →
 * STRICT [NODE]; PreferSameZone / PreferClose → FAILOVER [NETWORK, REGION, ZONE]; PreferSameNode → FAILOVER
 * [NETWORK, REGION, ZONE, SUBZONE, NODE]; publishNotReadyAddresses → health policy ALLOW_ALL. With both
 * Local and a traffic distribution, Local is taken (our reading of istiod's order). `undefined`: no
 * LoadBalancing at all (Standard, only healthy endpoints).
 */
export function loadBalancingOf(k: KubernetesServiceSettings): ServiceLoadBalancing | undefined {
  const healthPolicy: HealthPolicy | undefined = k.publishNotReadyAddresses ? 'AllowAll' : undefined
  let lb: LoadBalancing | undefined
  if (k.internalTrafficPolicy === 'Local') lb = { mode: 'Strict', routingPreferences: ['Node'] }
  else if (k.trafficDistribution === 'PreferSameZone' || k.trafficDistribution === 'PreferClose')
    lb = { mode: 'Failover', routingPreferences: ['Network', 'Region', 'Zone'] }
  else if (k.trafficDistribution === 'PreferSameNode')
    lb = { mode: 'Failover', routingPreferences: ['Network', 'Region', 'Zone', 'Subzone', 'Node'] }
  if (!lb && !healthPolicy) return undefined
  return { ...(lb ?? { mode: 'Standard', routingPreferences: [] }), ...(healthPolicy ? { healthPolicy } : {}) }
}

export interface MeshEndpoint {
  id: string
  peer: PeerInfo
  /** Default true. */
  healthy?: boolean | undefined
  /** Workload capacity; default 1. */
  capacity?: number | undefined
}

export type ExclusionReason =
  | { kind: 'unhealthy' }
  | { kind: 'capacity-zero' }
  | { kind: 'strict-mismatch'; rank: number; needed: number }
  | { kind: 'lower-rank'; rank: number; best: number }
  | { kind: 'passthrough' }

export interface MeshChoice {
  /** 'passthrough': the connect keeps its destination; 'none': refused (ECONNREFUSED); 'endpoints': pick below. */
  outcome: 'endpoints' | 'passthrough' | 'none'
  /** Chosen endpoints with their probability (ideal random source), in input order. */
  candidates: { id: string; probability: number }[]
  excluded: { id: string; reason: ExclusionReason }[]
}

const usable = (lb: ServiceLoadBalancing | undefined, e: MeshEndpoint): ExclusionReason | undefined => {
  if (e.healthy === false && lb?.healthPolicy !== 'AllowAll') return { kind: 'unhealthy' }
  if ((e.capacity ?? 1) === 0) return { kind: 'capacity-zero' }
  return undefined
}

function weighted(
  endpoints: MeshEndpoint[],
  weight: (e: MeshEndpoint) => number,
): { id: string; probability: number }[] {
  const total = endpoints.reduce((a, e) => a + weight(e), 0)
  return endpoints.map((e) => ({ id: e.id, probability: weight(e) / total }))
}

/** ztunnel's choice (docs/reference/istio-workload-api.md §3.6), exact capacity weights. */
export function ztunnelChoice(
  lb: ServiceLoadBalancing | undefined,
  client: PeerInfo | undefined,
  endpoints: readonly MeshEndpoint[],
): MeshChoice {
  const excluded: MeshChoice['excluded'] = []
  if (lb?.mode === 'Passthrough')
    return {
      outcome: 'passthrough',
      candidates: [],
      excluded: endpoints.map((e) => ({ id: e.id, reason: { kind: 'passthrough' } })),
    }
  let live: { e: MeshEndpoint; rank: number }[] = []
  for (const e of endpoints) {
    const why = usable(lb, e)
    if (why) excluded.push({ id: e.id, reason: why })
    else live.push({ e, rank: 0 })
  }
  if (lb && lb.mode !== 'Standard') {
    const prefs = lb.routingPreferences
    live = live.map((x) => ({ e: x.e, rank: localityRank(client, x.e.peer, prefs) }))
    if (lb.mode === 'Strict') {
      for (const x of live)
        if (x.rank < prefs.length)
          excluded.push({ id: x.e.id, reason: { kind: 'strict-mismatch', rank: x.rank, needed: prefs.length } })
      live = live.filter((x) => x.rank >= prefs.length)
    }
    const best = Math.max(-1, ...live.map((x) => x.rank))
    for (const x of live)
      if (x.rank < best) excluded.push({ id: x.e.id, reason: { kind: 'lower-rank', rank: x.rank, best } })
    live = live.filter((x) => x.rank === best)
  }
  if (live.length === 0) return { outcome: 'none', candidates: [], excluded }
  return {
    outcome: 'endpoints',
    candidates: weighted(
      live.map((x) => x.e),
      (e) => e.capacity ?? 1,
    ),
    excluded,
  }
}

/**
 * The kmesh-ts kernel's choice over the maps the daemon writes for this service and client: buckets from
 * `endpointPriority`, slots from `endpointSlots`, policy from `lbPolicyOf`, then the first bucket the policy
 * allows; each slot is equally likely (the modulo bias, below count / 2^32, is left out here).
 */
export function kernelChoice(
  lb: ServiceLoadBalancing | undefined,
  client: PeerInfo | undefined,
  endpoints: readonly MeshEndpoint[],
): MeshChoice {
  const excluded: MeshChoice['excluded'] = []
  const policy = lbPolicyOf(lb)
  if (policy === 3)
    return {
      outcome: 'passthrough',
      candidates: [],
      excluded: endpoints.map((e) => ({ id: e.id, reason: { kind: 'passthrough' } })),
    }
  const buckets: MeshEndpoint[][] = Array.from({ length: PRIO_COUNT }, () => [])
  const prefs = lb?.routingPreferences ?? []
  const rankOf = (e: MeshEndpoint): number => (lb && lb.mode !== 'Standard' ? localityRank(client, e.peer, prefs) : 0)
  for (const e of endpoints) {
    const why = usable(lb, e)
    if (why) {
      excluded.push({ id: e.id, reason: why })
      continue
    }
    const prio = endpointPriority(client, e.peer, lb)
    if (prio === undefined)
      excluded.push({ id: e.id, reason: { kind: 'strict-mismatch', rank: rankOf(e), needed: prefs.length } })
    else buckets[prio]!.push(e)
  }
  const choice = choosePriority(
    policy,
    buckets.map((b) => b.length),
  )
  if (choice.kind !== 'bucket') return { outcome: 'none', candidates: [], excluded }
  const best = maxRank(prefs) - choice.priority
  for (let p = 0; p < PRIO_COUNT; p++) {
    if (p === choice.priority) continue
    for (const e of buckets[p]!) excluded.push({ id: e.id, reason: { kind: 'lower-rank', rank: rankOf(e), best } })
  }
  const chosen = buckets[choice.priority]!
  const slots = endpointSlots(new Map(chosen.map((e, i) => [i, e.capacity ?? 1]))).slots
  const byId = new Map(chosen.map((e, i) => [e.id, slots.get(i) ?? 0]))
  return { outcome: 'endpoints', candidates: weighted(chosen, (e) => byId.get(e.id) ?? 0), excluded }
}

/** A reason in words, for tables and logs. */
export function describeExclusion(r: ExclusionReason): string {
  switch (r.kind) {
    case 'unhealthy':
      return 'unhealthy (health policy OnlyHealthy)'
    case 'capacity-zero':
      return 'capacity 0: never chosen'
    case 'strict-mismatch':
      return `Strict: locality rank ${r.rank} < ${r.needed} (not every preferred scope matches)`
    case 'lower-rank':
      return `a better-ranked group exists (rank ${r.rank} < ${r.best})`
    case 'passthrough':
      return 'PASSTHROUGH: no endpoint is chosen, the destination is kept'
  }
}
