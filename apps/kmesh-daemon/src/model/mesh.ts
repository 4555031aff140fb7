/**
 * The mesh as the daemon holds it: workloads, services (with their gateways) and authorization policies, every
 * field present with its default applied. Both sources are adapters into this one model: the mesh file
 * (mesh-file/, ztunnel's local config, docs/reference/local-config.md) and istiod's xDS (sources/cluster/xds-convert.ts,
 * docs/reference/istio-workload-api.md) each convert and validate their own format and hand these objects to the
 * processor. Names are ztunnel's camelCase keys; enum values are its (Rust) spellings. The load-balancing enums
 * and the locality are lb-model's, so the model and the selection code cannot drift apart.
 */
import type { HealthPolicy, LbMode, Locality, Scope } from '@kmesh-ts/lb-model'

export type { HealthPolicy, Locality }

export type Protocol = 'TCP' | 'HBONE'
export type NetworkMode = 'Standard' | 'HostNetwork'
export type HealthStatus = 'Healthy' | 'Unhealthy'
export type AppTunnelProtocol = 'NONE' | 'PROXY'
/** A locality scope a service prefers its endpoints to share with the client (lb-model's `Scope`). */
export type RoutingPreference = Scope
export type LoadBalancerMode = LbMode
export type IpFamilies = 'IPv4' | 'IPv6' | 'Dual'
export type Visibility = 'Public' | 'Namespace'
export type PolicyScope = 'Global' | 'Namespace' | 'WorkloadSelector'
export type PolicyAction = 'Allow' | 'Deny'

/** A port map `servicePort: targetPort`. ztunnel keeps it in a hash map, so file order carries no meaning. */
export type PortMap = Record<number, number>

/**
 * docs/reference/local-config.md §4.1: `destination` is `"<network>/<ip>"` (tried first) or
 * `"<namespace>/<hostname>"`.
 */
export type GatewayDestination =
  | { kind: 'address'; network: string; ip: string }
  | { kind: 'hostname'; namespace: string; hostname: string }

export interface GatewayAddress {
  destination: GatewayDestination
  hboneMtlsPort: number
}

export interface ApplicationTunnel {
  protocol: AppTunnelProtocol
  port?: number
}

/**
 * docs/reference/local-config.md §4. Absent strings are `""` in both adapters (the file's rule, §4.2; proto3's
 * default for xDS).
 */
export interface Workload {
  uid: string
  name: string
  namespace: string
  /** Canonical text form (`fd00::1`, never `FD00:0::1`). */
  workloadIps: string[]
  hostname: string
  network: string
  protocol: Protocol
  networkMode: NetworkMode
  trustDomain: string
  serviceAccount: string
  clusterId: string
  node: string
  workloadName: string
  workloadType: string
  canonicalName: string
  canonicalRevision: string
  status: HealthStatus
  capacity: number
  locality?: Locality
  waypoint?: GatewayAddress
  networkGateway?: GatewayAddress
  nativeTunnel: boolean
  applicationTunnel?: ApplicationTunnel
  /** Policy keys `namespace/name`. */
  authorizationPolicies: string[]
  /** `"namespace/hostname"` → port map: this workload is an endpoint of each service listed. */
  services: Record<string, PortMap>
}

export interface NetworkAddress {
  network: string
  ip: string
}

export interface CidrVip {
  network: string
  /** Canonical `ip/prefix`; host bits are kept as written (docs/reference/local-config.md §2.3). */
  cidr: string
}

export interface Endpoint {
  workloadUid: string
  port: PortMap
  status: HealthStatus
}

export interface WeightedWaypoint {
  destination: GatewayAddress
  weight: number
}

export interface LoadBalancer {
  routingPreferences: RoutingPreference[]
  mode: LoadBalancerMode
  healthPolicy: HealthPolicy
}

/** docs/reference/local-config.md §5. The service key is `namespace/hostname`. */
export interface Service {
  name: string
  namespace: string
  hostname: string
  vips: NetworkAddress[]
  cidrVips: CidrVip[]
  /** servicePort → targetPort (`0`: each endpoint's own mapping). */
  ports: PortMap
  /** Explicit endpoints by uid (usually empty: endpoints come from workloads' `services`). */
  endpoints: Record<string, Endpoint>
  subjectAltNames: string[]
  waypoint?: GatewayAddress
  weightedWaypoints: WeightedWaypoint[]
  /** Absent: behaves as `Standard`. */
  loadBalancer?: LoadBalancer
  /** Absent: the proto's "automatic". */
  ipFamilies?: IpFamilies
  canonical: boolean
  visibility: Visibility
}

/** docs/reference/local-config.md §2.5: written as YAML tags (`!Exact x`, `!Presence []`). */
export type StringMatch = { kind: 'Exact' | 'Prefix' | 'Suffix'; value: string } | { kind: 'Presence' }

export interface ServiceAccountMatch {
  namespace: string
  serviceAccount: string
}

/**
 * docs/reference/local-config.md §6.1. Every list defaults to `[]`; an empty list places no condition. CIDRs are
 * canonical `ip/prefix`.
 */
export interface Match {
  namespaces: StringMatch[]
  notNamespaces: StringMatch[]
  principals: StringMatch[]
  notPrincipals: StringMatch[]
  serviceAccounts: ServiceAccountMatch[]
  notServiceAccounts: ServiceAccountMatch[]
  sourceIps: string[]
  notSourceIps: string[]
  destinationIps: string[]
  notDestinationIps: string[]
  destinationPorts: number[]
  notDestinationPorts: number[]
}

/**
 * docs/reference/local-config.md §6. `rules[rule][clause][match]`: a rule matches if all clauses do, a clause if
 * any match object does.
 */
export interface Policy {
  name: string
  namespace: string
  scope: PolicyScope
  action: PolicyAction
  dryRun: boolean
  rules: Match[][][]
}

export interface MeshConfig {
  workloads: Workload[]
  services: Service[]
  policies: Policy[]
}
