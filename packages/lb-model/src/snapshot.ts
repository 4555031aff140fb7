/**
 * What the four load-balancing maps hold, as plain decoded records (the shapes @kmesh-ts/bpf-maps' codecs
 * decode to, docs/reference/kmesh-dataplane.md §2.3), and a lookup index over them. A snapshot can come from the
 * daemon's intent, from pinned maps read back, or from a test; the model never asks where.
 */
import { bytesKey, ipToBytes, type IpBytes } from './ip.js'

export interface PortRecord {
  servicePort: number
  targetPort: number
}
export interface WaypointRecord {
  address: string
  port: number
}

/** km_frontend: destination address (service VIP or workload IP) → upstream id. */
export interface FrontendRecord {
  address: string
  upstreamId: number
}
/** km_service. `ports` in slot order (the first matching service port wins); empty slots may be left out. */
export interface ServiceRecord {
  serviceId: number
  prioEndpointCount: readonly number[]
  lbPolicy: number
  ports: readonly PortRecord[]
  waypoint?: WaypointRecord | undefined
}
/** km_endpoint: (service, priority, 1-based index) → backend uid. */
export interface EndpointRecord {
  serviceId: number
  prio: number
  backendIndex: number
  backendUid: number
}
/** km_backend. `services` lists the service ids the workload belongs to (not read by the kernel). */
export interface BackendRecord {
  backendUid: number
  address: string
  services?: readonly number[] | undefined
  waypoint?: WaypointRecord | undefined
}

export interface MapSnapshot {
  frontends: readonly FrontendRecord[]
  services: readonly ServiceRecord[]
  endpoints: readonly EndpointRecord[]
  backends: readonly BackendRecord[]
}

export interface Waypoint {
  address: IpBytes
  port: number
}
export interface IndexedService {
  record: ServiceRecord
  waypoint: Waypoint | undefined
}
export interface IndexedBackend {
  record: BackendRecord
  address: IpBytes
  waypoint: Waypoint | undefined
}

/** Lookups the way the kernel does them: frontends by all 16 key bytes, the rest by their u32 keys. */
export interface SnapshotIndex {
  frontend: Map<string, number>
  service: Map<number, IndexedService>
  endpoint: Map<string, number>
  backend: Map<number, IndexedBackend>
}

export const endpointKeyOf = (serviceId: number, prio: number, backendIndex: number): string =>
  `${serviceId}/${prio}/${backendIndex}`

const waypointOf = (w: WaypointRecord | undefined): Waypoint | undefined =>
  w === undefined ? undefined : { address: ipToBytes(w.address), port: w.port }

const cache = new WeakMap<MapSnapshot, SnapshotIndex>()

/**
 * The index of a snapshot (built once per snapshot object and cached: treat snapshots as immutable). A later
 * record with the same key replaces an earlier one, as a later map write would.
 */
export function indexSnapshot(snapshot: MapSnapshot): SnapshotIndex {
  const known = cache.get(snapshot)
  if (known) return known
  const index: SnapshotIndex = { frontend: new Map(), service: new Map(), endpoint: new Map(), backend: new Map() }
  for (const f of snapshot.frontends) index.frontend.set(bytesKey(ipToBytes(f.address)), f.upstreamId)
  for (const s of snapshot.services) index.service.set(s.serviceId, { record: s, waypoint: waypointOf(s.waypoint) })
  for (const e of snapshot.endpoints)
    index.endpoint.set(endpointKeyOf(e.serviceId, e.prio, e.backendIndex), e.backendUid)
  for (const b of snapshot.backends)
    index.backend.set(b.backendUid, { record: b, address: ipToBytes(b.address), waypoint: waypointOf(b.waypoint) })
  cache.set(snapshot, index)
  return index
}
