/**
 * Why a connect goes where it goes: every outcome the kernel can produce for one destination, with its exact
 * probability under `bpf_get_prandom_u32()`, and why the service's other endpoints are not candidates. Built
 * on resolve(), so an explanation can never disagree with the model (and so with the kernel).
 */
import { describeExclusion, kernelChoice, type MeshEndpoint, type ServiceLoadBalancing } from './istio.js'
import type { PeerInfo } from './rank.js'
import { resolve, type ConnectInput, type Resolution } from './resolve.js'
import type { MapSnapshot } from './snapshot.js'

const TWO_32 = 0x1_0000_0000

/** P(random % count == i) for a uniform u32: counts that do not divide 2^32 favour the low residues slightly. */
export function residueProbability(i: number, count: number): number {
  return (Math.floor((TWO_32 - 1 - i) / count) + 1) / TWO_32
}

export interface ExplainDestination {
  address: string
  port: number
  family?: ConnectInput['family']
}

/** Optional mesh-level facts, so that endpoints missing from the maps get a precise reason. */
export interface ExplainSource {
  /** Where the connecting workload runs (the client the daemon ranked endpoints for). */
  peer?: PeerInfo | undefined
  /** serviceId → its load balancing, and its member workloads keyed by backend uid (as text). */
  services?: ReadonlyMap<number, { loadBalancing?: ServiceLoadBalancing | undefined; members: readonly MeshEndpoint[] }>
}

export interface ExplainOutcome {
  kind: Resolution['kind']
  probability: number
  /** rewrite: the new destination; leave / refuse: the reason (and errno). */
  address?: string
  port?: number
  viaWaypoint?: boolean
  reason?: string
  errno?: string
  backendUid?: number
  priority?: number
  /** Endpoint indexes (slots) that lead here. */
  indexes: number[]
}

export interface Explanation {
  destination: string
  port: number
  upstream?: { id: number; kind: 'service' | 'workload' | 'missing' }
  lbPolicy?: number
  /** Count per priority in the service record. */
  counts?: readonly number[]
  outcomes: ExplainOutcome[]
  excluded: { backendUid: number; priority?: number; reason: string }[]
  notes: string[]
}

const outcomeKey = (r: Resolution): string =>
  r.kind === 'rewrite'
    ? `rewrite ${r.trace.backendUid} ${r.address} ${r.port} ${r.viaWaypoint}`
    : `${r.kind} ${r.reason}`

/**
 * The explanation of connects to `destination` under `snapshot`. Probabilities are exact for the kernel's
 * `random % count + 1` (modulo bias included) and sum to 1.
 */
export function explain(
  snapshot: MapSnapshot,
  source: ExplainSource | undefined,
  destination: ExplainDestination,
): Explanation {
  const input = { destination: destination.address, port: destination.port, family: destination.family }
  const first = resolve(snapshot, { ...input, random: 0 })
  const out: Explanation = {
    destination: destination.address,
    port: destination.port,
    outcomes: [],
    excluded: [],
    notes: [],
  }
  const upstreamId = first.trace.upstreamId
  const service =
    first.trace.serviceId !== undefined
      ? snapshot.services.find((s) => s.serviceId === first.trace.serviceId)
      : undefined
  if (upstreamId !== undefined) {
    out.upstream = {
      id: upstreamId,
      kind: service ? 'service' : first.kind === 'refuse' && first.reason === 'stale-frontend' ? 'missing' : 'workload',
    }
  }
  if (service) {
    out.lbPolicy = service.lbPolicy
    out.counts = service.prioEndpointCount
  }

  const outcomes = new Map<string, ExplainOutcome>()
  const add = (r: Resolution, probability: number, index?: number): void => {
    const key = outcomeKey(r)
    let o = outcomes.get(key)
    if (!o) {
      o = { kind: r.kind, probability: 0, indexes: [], backendUid: r.trace.backendUid, priority: r.trace.priority }
      if (r.kind === 'rewrite') Object.assign(o, { address: r.address, port: r.port, viaWaypoint: r.viaWaypoint })
      else if (r.kind === 'leave') o.reason = r.reason
      else Object.assign(o, { reason: r.reason, errno: r.errno })
      outcomes.set(key, o)
    }
    o.probability += probability
    if (index !== undefined) o.indexes.push(index)
  }

  const { priority, count } = first.trace
  if (priority === undefined || count === undefined || !service) {
    add(first, 1) // no random choice on this path
  } else {
    // Each index i has probability P(random % count == i-1). Only indexes that exist can differ; the others
    // all end in a missing endpoint, whose mass is the rest.
    const present = snapshot.endpoints
      .filter(
        (e) =>
          e.serviceId === service.serviceId && e.prio === priority && e.backendIndex >= 1 && e.backendIndex <= count,
      )
      .map((e) => e.backendIndex)
    let rest = 1
    for (const i of [...new Set(present)].sort((a, b) => a - b)) {
      const p = residueProbability(i - 1, count)
      rest -= p
      add(resolve(snapshot, { ...input, random: i - 1 }), p, i)
    }
    if (present.length < count) {
      add(resolve(snapshot, { ...input, random: firstMissing(present, count) - 1 }), Math.max(0, rest))
      out.notes.push(
        `priority ${priority} holds ${count} per the service record but only ${new Set(present).size} endpoint entries: a stale count`,
      )
    }
    explainExclusions(snapshot, source, service.serviceId, priority, out)
  }
  out.outcomes = [...outcomes.values()].sort((a, b) => b.probability - a.probability)
  return out
}

function firstMissing(present: number[], count: number): number {
  const set = new Set(present)
  for (let i = 1; i <= count; i++) if (!set.has(i)) return i
  return count
}

function explainExclusions(
  snapshot: MapSnapshot,
  source: ExplainSource | undefined,
  serviceId: number,
  chosen: number,
  out: Explanation,
): void {
  const inBucket = new Map<number, number>() // uid → priority where it has slots
  for (const e of snapshot.endpoints)
    if (e.serviceId === serviceId && !inBucket.has(e.backendUid)) inBucket.set(e.backendUid, e.prio)
  for (const e of snapshot.endpoints)
    if (e.serviceId === serviceId && e.prio === chosen) inBucket.set(e.backendUid, chosen)
  for (const [uid, prio] of inBucket) {
    if (prio !== chosen)
      out.excluded.push({
        backendUid: uid,
        priority: prio,
        reason: `priority ${prio}: the policy draws from priority ${chosen} while it has endpoints`,
      })
  }
  const mesh = source?.services?.get(serviceId)
  const reasons = mesh
    ? new Map(
        kernelChoice(mesh.loadBalancing, source?.peer, mesh.members).excluded.map((x) => [
          x.id,
          describeExclusion(x.reason),
        ]),
      )
    : undefined
  for (const b of snapshot.backends) {
    if (inBucket.has(b.backendUid) || !(b.services ?? []).includes(serviceId)) continue
    out.excluded.push({
      backendUid: b.backendUid,
      reason:
        reasons?.get(String(b.backendUid)) ??
        'a member of the service with no endpoint entry (unhealthy, capacity 0, or Strict locality mismatch)',
    })
  }
}
