/**
 * Istio workload API resources (as @kmesh-ts/xds-client decodes them) -> the mesh model the workload processor
 * already takes from mesh files, so cluster mode and local mode share one processor. Applies the xDS defaults
 * that ztunnel applies and mesh files do not (docs/reference/local-config.md §4.2): trust domain `cluster.local`,
 * service account `default`, cluster id `Kubernetes`.
 */
import { formatIp } from '@kmesh-ts/ip'
import type { Service as XdsService, Workload as XdsWorkload, GatewayAddress as XdsGateway } from '@kmesh-ts/xds-client'
import {
  intern,
  portMapOf,
  type GatewayAddress,
  type LoadBalancer,
  type RoutingPreference,
  type Service,
  type Workload,
} from '../../model/index.js'
import { workloadServicesProblem } from '../../processor/kernel-fit.js'

export class UnappliableResource extends Error {}

/** Canonical text of 4 or 16 address bytes (@kmesh-ts/ip: RFC 5952, `::ffff:a.b.c.d` for v4-mapped). */
export function ipText(bytes: Uint8Array): string {
  return formatIp(bytes)
}

const SCOPES: Record<number, RoutingPreference | undefined> = {
  1: 'Region',
  2: 'Zone',
  3: 'Subzone',
  4: 'Node',
  5: 'Cluster',
  6: 'Network',
}
const MODES = ['Standard', 'Strict', 'Failover', 'Passthrough'] as const
const WORKLOAD_TYPES = ['deployment', 'cronjob', 'pod', 'job'] as const

function gateway(g: XdsGateway | undefined): GatewayAddress | undefined {
  if (!g) return undefined
  if (g.address)
    return {
      destination: { kind: 'address', network: g.address.network, ip: ipText(g.address.address) },
      hboneMtlsPort: g.hboneMtlsPort,
    }
  if (g.hostname)
    return {
      destination: { kind: 'hostname', namespace: g.hostname.namespace, hostname: g.hostname.hostname },
      hboneMtlsPort: g.hboneMtlsPort,
    }
  return undefined
}

/** `uid`: the same text as w.uid (the resource name), given to keep one string for both. */
export function workloadFromXds(w: XdsWorkload, uid: string = w.uid): Workload {
  const services = Object.entries(w.services)
  const tooMany = workloadServicesProblem(services.length)
  if (tooMany) throw new UnappliableResource(`workload ${w.uid}: ${tooMany}`)
  if (uid !== w.uid) throw new Error(`workload ${w.uid}: converted under another uid ${uid}`)
  const out: Workload = {
    uid,
    name: w.name,
    namespace: intern(w.namespace),
    workloadIps: w.addresses.map(ipText),
    hostname: w.hostname,
    network: intern(w.network),
    protocol: w.tunnelProtocol === 1 ? 'HBONE' : 'TCP',
    networkMode: w.networkMode === 1 ? 'HostNetwork' : 'Standard',
    trustDomain: intern(w.trustDomain || 'cluster.local'),
    serviceAccount: intern(w.serviceAccount || 'default'),
    clusterId: intern(w.clusterId || 'Kubernetes'),
    node: intern(w.node),
    workloadName: intern(w.workloadName),
    workloadType: WORKLOAD_TYPES[w.workloadType] ?? '',
    canonicalName: intern(w.canonicalName),
    canonicalRevision: intern(w.canonicalRevision),
    status: w.status === 1 ? 'Unhealthy' : 'Healthy',
    capacity: w.capacity ?? 1,
    nativeTunnel: w.nativeTunnel,
    authorizationPolicies: [...w.authorizationPolicies],
    services: Object.fromEntries(
      services.map(([key, list]) => [key, portMapOf(list.ports.map((p) => [p.servicePort, p.targetPort]))]),
    ),
  }
  if (w.locality) out.locality = { ...w.locality }
  const wp = gateway(w.waypoint)
  if (wp) out.waypoint = wp
  const gw = gateway(w.networkGateway)
  if (gw) out.networkGateway = gw
  if (w.applicationTunnel)
    out.applicationTunnel = {
      protocol: w.applicationTunnel.protocol === 1 ? 'PROXY' : 'NONE',
      ...(w.applicationTunnel.port ? { port: w.applicationTunnel.port } : {}),
    }
  return out
}

export function serviceFromXds(s: XdsService): Service {
  // More ports than the service record holds never get here: the xDS client refuses them while decoding, with the
  // limit the daemon passes (KERNEL_LIMITS.portsPerService, daemon.ts).
  const out: Service = {
    name: s.name,
    namespace: s.namespace,
    hostname: s.hostname,
    vips: s.addresses.filter((a) => a.length === undefined).map((a) => ({ network: a.network, ip: ipText(a.address) })),
    cidrVips: s.addresses
      .filter((a) => a.length !== undefined)
      .map((a) => ({ network: a.network, cidr: `${ipText(a.address)}/${a.length}` })),
    ports: portMapOf(s.ports.map((p) => [p.servicePort, p.targetPort])),
    endpoints: {},
    subjectAltNames: [...s.subjectAltNames],
    weightedWaypoints: s.weightedWaypoints.flatMap((ww) => {
      const destination = gateway(ww.destination)
      return destination ? [{ destination, weight: ww.weight }] : []
    }),
    canonical: s.canonical,
    visibility: s.visibility === 1 ? 'Namespace' : 'Public',
  }
  const wp = gateway(s.waypoint)
  if (wp) out.waypoint = wp
  if (s.loadBalancing) {
    const lb: LoadBalancer = {
      routingPreferences: s.loadBalancing.routingPreference
        .map((p) => SCOPES[p])
        .filter((p): p is RoutingPreference => !!p),
      mode: MODES[s.loadBalancing.mode] ?? 'Standard',
      healthPolicy: s.loadBalancing.healthPolicy === 1 ? 'AllowAll' : 'OnlyHealthy',
    }
    out.loadBalancer = lb
  }
  if (s.ipFamilies) out.ipFamilies = (['IPv4', 'IPv6', 'Dual'] as const)[s.ipFamilies - 1]
  return out
}
