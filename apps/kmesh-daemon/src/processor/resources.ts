/**
 * What one mesh resource contributes to the kernel, computed on its own: the backend of a workload, the
 * service intent (endpoint members, priorities, capacity slots, ports, waypoint) of a service, the IPs each
 * one claims in the frontend map. Full recomputes (computeIntent) and incremental updates (MeshEngine) both
 * call these, so they cannot disagree.
 */
import { LB_POLICY, PRIO_COUNT } from '@kmesh-ts/kernel-abi'
import { endpointPriority, endpointSlots, lbPolicyOf, type PeerInfo } from '@kmesh-ts/lb-model'
import type { BackendValue, ServicePort, Waypoint } from '@kmesh-ts/bpf-maps/codecs'
import {
  serviceKeyOf,
  serviceId,
  workloadId,
  type GatewayAddress,
  type Service,
  type Workload,
} from '../model/index.js'
import type { IdTable } from '../ids/id-table.js'
import { onNodeNetwork, remoteEndpointReason } from './network.js'

export interface ServiceIntent {
  key: string
  lbPolicy: number
  ports: ServicePort[]
  waypoint?: Waypoint | undefined
  /** backend uid -> priority bucket (0..6) */
  members: Map<number, number>
  /**
   * backend uid -> endpoint slots in its bucket, from the workload's capacity (lb-model `endpointSlots`: the
   * kernel picks a slot uniformly, so slots are the weight). Absent: one slot each.
   */
  slots?: Map<number, number>
}

export type BackendIntent = BackendValue & { name: string }

/** Everything the mesh says the kernel should hold, before any byte layout. */
export interface Intent {
  backends: Map<number, BackendIntent>
  services: Map<number, ServiceIntent>
  /** canonical IP text -> upstream id (a service id or a backend uid) */
  frontends: Map<string, number>
  /** Things the kernel cannot express exactly, each naming the resource. */
  warnings: string[]
}

/**
 * Where a full derivation puts each record's intent as it is derived: into an Intent (explain, tests) or straight
 * into map records (records.ts imageSink), so a full recompute builds no intent graph of the whole mesh.
 */
export interface IntentSink {
  backend(uid: number, backend: BackendIntent): void
  service(id: number, service: ServiceIntent): void
  frontend(ip: string, upstreamId: number): void
}

/** A sink that collects into `intent`. */
export function intentSink(intent: Intent): IntentSink {
  return {
    backend: (uid, be) => intent.backends.set(uid, be),
    service: (id, svc) => intent.services.set(id, svc),
    frontend: (ip, id) => intent.frontends.set(ip, id),
  }
}

/** Read access to the mesh that a resource's derivation needs. */
export interface IntentContext {
  ids: IdTable
  /** this node's network (`''`: none); network.ts says what it decides */
  network: string
  /** the client whose locality ranks endpoints (the first workload on this node) */
  client: PeerInfo | undefined
  service(key: string): Service | undefined
  workload(uid: string): Workload | undefined
  /** workloads that list the service key in their `services` map */
  membersOf(key: string): Iterable<Workload>
  workloadByHostname(namespace: string, hostname: string): Workload | undefined
  warn(message: string): void
}

/**
 * IPs a workload claims in the frontend map (direct access); host-network workloads are never looked up by IP,
 * and a workload on another network than the node's is not looked up here at all (network.ts).
 */
export function workloadFrontendIps(w: Workload, nodeNetwork: string): string[] {
  return w.networkMode === 'HostNetwork' || !onNodeNetwork(w.network, nodeNetwork) ? [] : w.workloadIps
}

/** The VIPs a service claims in the frontend map: those on the node's network or on none (network.ts). */
export function serviceFrontendIps(s: Service, nodeNetwork: string): string[] {
  const ips: string[] = []
  for (const v of s.vips) if (onNodeNetwork(v.network, nodeNetwork)) ips.push(v.ip)
  return ips
}

/** Whether an object has an own enumerable key, without listing them. */
export function hasKeys(o: object): boolean {
  for (const _ in o) return true
  return false
}

/**
 * The backend record of a workload, or undefined when it has no address (hostname-only workloads) or is on
 * another network (never a backend here, network.ts).
 */
export function backendOf(w: Workload, ctx: IntentContext): BackendIntent | undefined {
  if (!hasBackend(w, ctx.network)) return undefined
  const address = w.workloadIps[0]!
  if (w.workloadIps.length > 1)
    ctx.warn(`workload ${w.uid}: connects through a service reach its first address ${address} only`)
  // the workload's keys of the services held (a service's key is its `namespace/hostname`, as serviceName uses)
  const services = Object.keys(w.services).filter((k) => ctx.service(k) !== undefined)
  return {
    name: w.uid,
    address,
    services: services.map((k) => serviceId(ctx.ids, k)),
    waypoint: waypointOf(w.waypoint, `workload ${w.uid}`, ctx),
  }
}

/** Whether backendOf gives the workload a record: it has an address and is on the node's network (or none). */
export function hasBackend(w: Workload, nodeNetwork: string): boolean {
  return w.workloadIps.length > 0 && onNodeNetwork(w.network, nodeNetwork)
}

export function serviceIntentOf(s: Service, ctx: IntentContext): ServiceIntent {
  const key = serviceKeyOf(s)
  const lb = s.loadBalancer
  const lbPolicy = lbPolicyOf(lb)
  const members = new Map<number, number>()
  const capacity = new Map<number, number>()
  const endpoints = lbPolicy === LB_POLICY.Passthrough ? [] : endpointsOf(s, key, ctx)
  for (const { workload } of endpoints) {
    if (!onNodeNetwork(workload.network, ctx.network)) {
      ctx.warn(remoteEndpointReason(key, workload, ctx.network))
      continue
    }
    if (workload.workloadIps.length === 0) continue // no backend record
    if (workload.status === 'Unhealthy' && s.loadBalancer?.healthPolicy !== 'AllowAll') continue
    if (workload.capacity === 0) continue // capacity 0 is never chosen
    const prio = endpointPriority(ctx.client, peerOf(workload), lb)
    if (prio === undefined) continue
    const uid = workloadId(ctx.ids, workload.uid)
    members.set(uid, prio)
    capacity.set(uid, workload.capacity)
  }
  return {
    key,
    lbPolicy,
    ports: servicePorts(s, key, endpoints, ctx),
    waypoint: waypointOf(s.waypoint, `service ${key}`, ctx),
    members,
    slots: slotsOf(members, capacity, key, ctx),
  }
}

/**
 * A service's members (uid → priority) grouped by priority in one pass, each uid with `weightOf(uid)`, in the
 * members' order; a priority no member has is a hole (most services use one priority of the seven).
 */
export function membersByPriority(
  members: ReadonlyMap<number, number>,
  weightOf: (uid: number) => number,
): (Map<number, number> | undefined)[] {
  const byPrio: (Map<number, number> | undefined)[] = []
  for (const [uid, p] of members) {
    let bucket = byPrio[p]
    if (!bucket) byPrio[p] = bucket = new Map()
    bucket.set(uid, weightOf(uid))
  }
  return byPrio
}

/** Endpoint slots per bucket from capacities; warns when a bucket's shares had to be approximated. */
function slotsOf(
  members: Map<number, number>,
  capacity: Map<number, number>,
  key: string,
  ctx: IntentContext,
): Map<number, number> {
  const out = new Map<number, number>()
  const byPrio = membersByPriority(members, (uid) => capacity.get(uid) ?? 1)
  for (let prio = 0; prio < PRIO_COUNT; prio++) {
    const bucket = byPrio[prio]
    if (!bucket) continue
    const r = endpointSlots(bucket)
    for (const [uid, n] of r.slots) out.set(uid, n)
    if (!r.exact)
      ctx.warn(
        `service ${key}: capacities at priority ${prio} need more than ${[...r.slots.values()].reduce((a, b) => a + b, 0)} endpoint slots; shares are approximated (largest error ${(r.maxError * 100).toFixed(2)} points)`,
      )
  }
  return out
}

interface EndpointSource {
  workload: Workload
  ports: Record<number, number>
}

/** A service's endpoints: workloads listing it in their `services` map, plus explicit `endpoints` entries. */
function endpointsOf(s: Service, key: string, ctx: IntentContext): EndpointSource[] {
  if (!hasKeys(s.endpoints)) {
    // No explicit endpoints (nearly every service): the members, in the order the map below would give them.
    const members: EndpointSource[] = []
    for (const w of ctx.membersOf(key)) {
      const ports = w.services[key]
      if (ports) members.push({ workload: w, ports })
    }
    return members
  }
  const out = new Map<string, EndpointSource>()
  for (const [uid, ep] of Object.entries(s.endpoints)) {
    const workload = ctx.workload(ep.workloadUid)
    if (workload) out.set(uid, { workload: { ...workload, status: ep.status }, ports: ep.port })
  }
  // A generated endpoint with the same uid overwrites an explicit one (docs/reference/local-config.md §5).
  for (const w of ctx.membersOf(key)) {
    const ports = w.services[key]
    if (ports) out.set(w.uid, { workload: w, ports })
  }
  return [...out.values()]
}

/**
 * Service port -> target port for the kernel record, which holds one target per service port. ztunnel prefers
 * each endpoint's own mapping, then the service's target, then the service port: we do the same when the
 * endpoints agree, and warn when they do not.
 */
function servicePorts(s: Service, key: string, endpoints: EndpointSource[], ctx: IntentContext): ServicePort[] {
  return Object.entries(s.ports).map(([sp, tp]) => {
    const servicePort = Number(sp)
    const own = new Set(
      endpoints.map((e) => e.ports[servicePort]).filter((p): p is number => p !== undefined && p !== 0),
    )
    if (own.size === 1) return { servicePort, targetPort: [...own][0]! }
    if (own.size > 1)
      ctx.warn(
        `service ${key}: endpoints map port ${servicePort} to different target ports (${[...own].join(', ')}); the kernel uses ${tp || servicePort} for all`,
      )
    return { servicePort, targetPort: tp || servicePort }
  })
}

export function peerOf(w: Workload): PeerInfo {
  return { locality: w.locality, node: w.node, clusterId: w.clusterId, network: w.network }
}

function waypointOf(gw: GatewayAddress | undefined, owner: string, ctx: IntentContext): Waypoint | undefined {
  if (!gw) return undefined
  const address = resolveGateway(gw, ctx)
  if (!address) {
    ctx.warn(`${owner}: waypoint ${gatewayTarget(gw)} is not in the mesh; traffic goes to the destination directly`)
    return undefined
  }
  return { address, port: gw.hboneMtlsPort }
}

function resolveGateway(gw: GatewayAddress, ctx: IntentContext): string | undefined {
  const d = gw.destination
  if (d.kind === 'address') return d.ip
  const svc = ctx.service(`${d.namespace}/${d.hostname}`)
  if (svc) return svc.vips[0]?.ip
  return ctx.workloadByHostname(d.namespace, d.hostname)?.workloadIps[0]
}

/** What a gateway address refers to: `namespace/hostname`, or the IP of the address form. */
export function gatewayTarget(gw: GatewayAddress): string {
  const d = gw.destination
  return d.kind === 'address' ? d.ip : `${d.namespace}/${d.hostname}`
}
