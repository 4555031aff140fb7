/**
 * What the mesh says the kernel should hold, before any byte layout: backends, services with their endpoint
 * membership and priority, and frontends. Pure: the same config and ids give the same intent, whatever is in
 * the maps now (the map layout, which depends on what is there, is computed in records.ts).
 */
import { endpointPriority, endpointSlots, lbPolicyOf, PRIO_COUNT, type LoadBalancing, type PeerInfo } from '@kmesh-ts/lb-model'
import type { BackendValue, ServicePort, Waypoint } from '@kmesh-ts/bpf-maps/codecs'
import type { GatewayAddress, MeshConfig, Service, Workload } from '../mesh-file/index.js'
import type { IdTable } from '../ids/id-table.js'

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

export interface Intent {
  backends: Map<number, BackendValue & { name: string }>
  services: Map<number, ServiceIntent>
  /** canonical IP text -> upstream id (a service id or a backend uid) */
  frontends: Map<string, number>
  /** Things the kernel cannot express exactly, each naming the resource. */
  warnings: string[]
  /** Every id-table name in use, so unused ids can be released after the maps no longer hold them. */
  names: Set<string>
}

export interface IntentOptions {
  /** The node this daemon runs on: its first workload is the client whose locality ranks endpoints. */
  nodeName?: string | undefined
}

export const serviceName = (s: { namespace: string; hostname: string }): string => `svc:${s.namespace}/${s.hostname}`
export const workloadName = (w: { uid: string }): string => `wl:${w.uid}`

export function computeIntent(config: MeshConfig, ids: IdTable, options: IntentOptions = {}): Intent {
  const warnings: string[] = []
  const names = new Set<string>()
  const backends = new Map<number, BackendValue & { name: string }>()
  const services = new Map<number, ServiceIntent>()
  const frontends = new Map<string, number>()
  const workloadsByUid = new Map(config.workloads.map((w) => [w.uid, w]))
  const servicesByKey = new Map(config.services.map((s) => [`${s.namespace}/${s.hostname}`, s]))
  const client = clientPeer(config.workloads, options.nodeName)

  const waypointOf = (gw: GatewayAddress | undefined, owner: string): Waypoint | undefined => {
    if (!gw) return undefined
    const address = resolveGateway(gw, servicesByKey, config.workloads)
    if (!address) {
      warnings.push(`${owner}: waypoint ${describeGateway(gw)} is not in the mesh file; traffic goes to the destination directly`)
      return undefined
    }
    return { address, port: gw.hboneMtlsPort }
  }

  // Backends: every workload with an address. The record holds one address: the first listed.
  const backendUidOf = new Map<string, number>()
  for (const w of config.workloads) {
    const address = w.workloadIps[0]
    if (address === undefined) continue
    const name = workloadName(w)
    const uid = ids.idOf(name)
    names.add(name)
    backendUidOf.set(w.uid, uid)
    const memberOf = Object.keys(w.services).map((k) => servicesByKey.get(k)).filter((s): s is Service => !!s)
    backends.set(uid, { name: w.uid, address, services: memberOf.map((s) => ids.idOf(serviceName(s))), waypoint: waypointOf(w.waypoint, `workload ${w.uid}`) })
    if (w.workloadIps.length > 1) warnings.push(`workload ${w.uid}: connects through a service reach its first address ${address} only`)
    if (w.networkMode === 'HostNetwork') continue // never looked up by IP (reference/local-config.md §4)
    for (const ip of w.workloadIps) frontends.set(ip, uid)
  }

  for (const s of config.services) {
    const name = serviceName(s)
    const sid = ids.idOf(name)
    names.add(name)
    const key = `${s.namespace}/${s.hostname}`
    const lb = s.loadBalancer as LoadBalancing | undefined
    const lbPolicy = lbPolicyOf(lb)
    const members = new Map<number, number>()
    const capacity = new Map<number, number>()
    const endpointWorkloads = lbPolicy === 3 ? [] : endpointsOf(s, key, config.workloads, workloadsByUid)
    for (const { workload } of endpointWorkloads) {
      const uid = backendUidOf.get(workload.uid)
      if (uid === undefined) continue
      if (workload.status === 'Unhealthy' && s.loadBalancer?.healthPolicy !== 'AllowAll') continue
      if (workload.capacity === 0) continue // capacity 0 is never chosen
      const prio = endpointPriority(client, peerOf(workload), lb)
      if (prio === undefined) continue
      members.set(uid, prio)
      capacity.set(uid, workload.capacity)
    }
    const slots = slotsOf(members, capacity, key, warnings)
    services.set(sid, {
      key,
      lbPolicy,
      ports: servicePorts(s, key, endpointWorkloads, warnings),
      waypoint: waypointOf(s.waypoint, `service ${key}`),
      members,
      slots,
    })
    for (const vip of s.vips) {
      const previous = frontends.get(vip.ip)
      if (previous !== undefined && !services.has(previous)) warnings.push(`service ${key}: VIP ${vip.ip} is also a workload address; the service wins`)
      else if (previous !== undefined && previous !== sid) warnings.push(`service ${key}: VIP ${vip.ip} is shared with ${services.get(previous)?.key}; the later service wins`)
      frontends.set(vip.ip, sid)
    }
  }
  return { backends, services, frontends, warnings, names }
}

/** Endpoint slots per bucket from capacities; warns when a bucket's shares had to be approximated. */
function slotsOf(members: Map<number, number>, capacity: Map<number, number>, key: string, warnings: string[]): Map<number, number> {
  const out = new Map<number, number>()
  for (let prio = 0; prio < PRIO_COUNT; prio++) {
    const bucket = new Map([...members].filter(([, p]) => p === prio).map(([uid]) => [uid, capacity.get(uid) ?? 1]))
    if (bucket.size === 0) continue
    const r = endpointSlots(bucket)
    for (const [uid, n] of r.slots) out.set(uid, n)
    if (!r.exact) warnings.push(`service ${key}: capacities at priority ${prio} need more than ${[...r.slots.values()].reduce((a, b) => a + b, 0)} endpoint slots; shares are approximated (largest error ${(r.maxError * 100).toFixed(2)} points)`)
  }
  return out
}

interface EndpointSource { workload: Workload; ports: Record<number, number> }

/** A service's endpoints: workloads listing it in their `services` map, plus explicit `endpoints` entries. */
function endpointsOf(s: Service, key: string, workloads: Workload[], byUid: Map<string, Workload>): EndpointSource[] {
  const out = new Map<string, EndpointSource>()
  for (const [uid, ep] of Object.entries(s.endpoints)) {
    const workload = byUid.get(ep.workloadUid)
    if (workload) out.set(uid, { workload: { ...workload, status: ep.status }, ports: ep.port })
  }
  // A generated endpoint with the same uid overwrites an explicit one (reference/local-config.md §5).
  for (const w of workloads) {
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
function servicePorts(s: Service, key: string, endpoints: EndpointSource[], warnings: string[]): ServicePort[] {
  return Object.entries(s.ports).map(([sp, tp]) => {
    const servicePort = Number(sp)
    const own = new Set(endpoints.map((e) => e.ports[servicePort]).filter((p): p is number => p !== undefined && p !== 0))
    if (own.size === 1) return { servicePort, targetPort: [...own][0]! }
    if (own.size > 1) warnings.push(`service ${key}: endpoints map port ${servicePort} to different target ports (${[...own].join(', ')}); the kernel uses ${tp || servicePort} for all`)
    return { servicePort, targetPort: tp || servicePort }
  })
}

function peerOf(w: Workload): PeerInfo {
  return { locality: w.locality, node: w.node, clusterId: w.clusterId, network: w.network }
}

/** The client whose view ranks endpoints: the first workload on this node (Kmesh learns the node's locality the same way). */
function clientPeer(workloads: Workload[], nodeName: string | undefined): PeerInfo | undefined {
  if (nodeName === undefined) return undefined
  const local = workloads.find((w) => w.node === nodeName)
  return local ? peerOf(local) : { node: nodeName }
}

function resolveGateway(gw: GatewayAddress, services: Map<string, Service>, workloads: Workload[]): string | undefined {
  const d = gw.destination
  if (d.kind === 'address') return d.ip
  const svc = services.get(`${d.namespace}/${d.hostname}`)
  if (svc) return svc.vips[0]?.ip
  return workloads.find((w) => w.namespace === d.namespace && w.hostname === d.hostname)?.workloadIps[0]
}

function describeGateway(gw: GatewayAddress): string {
  const d = gw.destination
  return d.kind === 'address' ? `${d.network}/${d.ip}` : `${d.namespace}/${d.hostname}`
}
