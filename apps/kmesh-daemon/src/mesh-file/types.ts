/**
 * The mesh file as typed objects, every field of docs/reference/local-config.md present with its default
 * applied. Names are the file's camelCase keys; enum values are the file's (Rust) spellings.
 */

export type Protocol = 'TCP' | 'HBONE'
export type NetworkMode = 'Standard' | 'HostNetwork'
export type HealthStatus = 'Healthy' | 'Unhealthy'
export type AppTunnelProtocol = 'NONE' | 'PROXY'
export type RoutingPreference = 'Region' | 'Zone' | 'Subzone' | 'Node' | 'Cluster' | 'Network'
export type LoadBalancerMode = 'Standard' | 'Strict' | 'Failover' | 'Passthrough'
export type HealthPolicy = 'OnlyHealthy' | 'AllowAll'
export type IpFamilies = 'IPv4' | 'IPv6' | 'Dual'
export type Visibility = 'Public' | 'Namespace'
export type PolicyScope = 'Global' | 'Namespace' | 'WorkloadSelector'
export type PolicyAction = 'Allow' | 'Deny'

/** A port map `servicePort: targetPort`. ztunnel keeps it in a hash map, so file order carries no meaning. */
export type PortMap = Record<number, number>

/** §4.1: `destination` is `"<network>/<ip>"` (tried first) or `"<namespace>/<hostname>"`. */
export type GatewayDestination =
  | { kind: 'address'; network: string; ip: string }
  | { kind: 'hostname'; namespace: string; hostname: string }

export interface GatewayAddress {
  destination: GatewayDestination
  hboneMtlsPort: number
}

export interface Locality {
  region: string
  zone: string
  subzone: string
}

export interface ApplicationTunnel {
  protocol: AppTunnelProtocol
  port?: number
}

/** §4. Strings default to `""` (not to the xDS defaults, §4.2). */
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
  /** Canonical `ip/prefix`; host bits are kept as written (§2.3). */
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

/** §5. The service key is `namespace/hostname`. */
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

/** §2.5: written as YAML tags (`!Exact x`, `!Presence []`). */
export type StringMatch = { kind: 'Exact' | 'Prefix' | 'Suffix'; value: string } | { kind: 'Presence' }

export interface ServiceAccountMatch {
  namespace: string
  serviceAccount: string
}

/** §6.1. Every list defaults to `[]`; an empty list places no condition. CIDRs are canonical `ip/prefix`. */
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

/** §6. `rules[rule][clause][match]`: a rule matches if all clauses do, a clause if any match object does. */
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
