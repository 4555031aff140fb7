// Plain TypeScript shapes of the Istio workload API (docs/reference/istio-workload-api.md §1.2, §1.3).
//
// Field names are the protobuf names in lowerCamelCase. Scalars and repeated fields are always present (proto3
// defaults: "", 0, false, []); message fields and proto3 `optional` fields are `undefined` when absent.
// google.protobuf.UInt32Value `capacity` is unwrapped to `number | undefined`. IPs are raw bytes (4 or 16).
import type {
  AppProtocol,
  ApplicationTunnelProtocol,
  AuthorizationAction,
  AuthorizationScope,
  HealthPolicy,
  IPFamilies,
  LoadBalancingMode,
  LoadBalancingScope,
  NetworkMode,
  ServiceVisibility,
  TunnelProtocol,
  WorkloadStatus,
  WorkloadType,
} from './enums.js'

/** google.protobuf.Any */
export interface Any {
  typeUrl: string
  value: Uint8Array
}

export interface Extension {
  name: string
  config?: Any | undefined
}

export interface NetworkAddress {
  network: string
  /** 4 or 16 bytes */
  address: Uint8Array
  /** CIDR prefix length; undefined means a host address */
  length?: number | undefined
}

export interface NamespacedHostname {
  namespace: string
  hostname: string
}

/** Exactly one of `hostname` and `address` is set in a valid resource. */
export interface GatewayAddress {
  hostname?: NamespacedHostname | undefined
  address?: NetworkAddress | undefined
  hboneMtlsPort: number
}

export interface WeightedWaypoint {
  destination?: GatewayAddress | undefined
  weight: number
}

export interface Port {
  servicePort: number
  targetPort: number
  appProtocol: AppProtocol
}

export interface PortList {
  ports: Port[]
}

export interface Locality {
  region: string
  zone: string
  subzone: string
}

export interface ApplicationTunnel {
  protocol: ApplicationTunnelProtocol
  port: number
}

export interface LoadBalancing {
  routingPreference: LoadBalancingScope[]
  mode: LoadBalancingMode
  healthPolicy: HealthPolicy
}

/** Keyed on the wire by `namespace/hostname`. */
export interface Service {
  name: string
  namespace: string
  hostname: string
  addresses: NetworkAddress[]
  ports: Port[]
  subjectAltNames: string[]
  waypoint?: GatewayAddress | undefined
  loadBalancing?: LoadBalancing | undefined
  ipFamilies: IPFamilies
  extensions: Extension[]
  canonical: boolean
  ingressUseWaypoint: boolean
  weightedWaypoints: WeightedWaypoint[]
  visibility: ServiceVisibility
}

/** Keyed on the wire by `uid`. */
export interface Workload {
  uid: string
  name: string
  namespace: string
  /** 4- or 16-byte IPs */
  addresses: Uint8Array[]
  hostname: string
  network: string
  tunnelProtocol: TunnelProtocol
  trustDomain: string
  serviceAccount: string
  waypoint?: GatewayAddress | undefined
  networkGateway?: GatewayAddress | undefined
  node: string
  canonicalName: string
  canonicalRevision: string
  workloadType: WorkloadType
  workloadName: string
  nativeTunnel: boolean
  applicationTunnel?: ApplicationTunnel | undefined
  /** `namespace/hostname` -> port map of this workload in that service */
  services: Record<string, PortList>
  authorizationPolicies: string[]
  status: WorkloadStatus
  clusterId: string
  locality?: Locality | undefined
  networkMode: NetworkMode
  extensions: Extension[]
  /** relative weight; undefined means 1 */
  capacity?: number | undefined
}

/** One `type.googleapis.com/istio.workload.Address` resource. */
export type Address = { workload: Workload; service?: undefined } | { service: Service; workload?: undefined }

/** istio.security.Address: an IP or CIDR. */
export interface AuthorizationAddress {
  address: Uint8Array
  length: number
}

export interface ServiceAccountMatch {
  namespace: string
  serviceAccount: string
}

/** Exactly one member is set in a valid resource; `presence` matches any non-empty value. */
export interface StringMatch {
  exact?: string | undefined
  prefix?: string | undefined
  suffix?: string | undefined
  presence?: Record<string, never> | undefined
}

export interface Match {
  namespaces: StringMatch[]
  notNamespaces: StringMatch[]
  serviceAccounts: ServiceAccountMatch[]
  notServiceAccounts: ServiceAccountMatch[]
  principals: StringMatch[]
  notPrincipals: StringMatch[]
  sourceIps: AuthorizationAddress[]
  notSourceIps: AuthorizationAddress[]
  destinationIps: AuthorizationAddress[]
  notDestinationIps: AuthorizationAddress[]
  destinationPorts: number[]
  notDestinationPorts: number[]
  extensions: Extension[]
}

export interface Clause {
  matches: Match[]
}

export interface Rule {
  clauses: Clause[]
}

/** One `type.googleapis.com/istio.security.Authorization` resource, keyed by `namespace/name`. */
export interface Authorization {
  name: string
  namespace: string
  scope: AuthorizationScope
  action: AuthorizationAction
  rules: Rule[]
  dryRun: boolean
  extensions: Extension[]
}

/** Type URLs of the two resource types this client watches (reference §1.1). */
export const ADDRESS_TYPE_URL = 'type.googleapis.com/istio.workload.Address'
export const AUTHORIZATION_TYPE_URL = 'type.googleapis.com/istio.security.Authorization'
export type TypeUrl = typeof ADDRESS_TYPE_URL | typeof AUTHORIZATION_TYPE_URL

/** Type URL -> decoded resource type. */
export interface ResourceTypes {
  [ADDRESS_TYPE_URL]: Address
  [AUTHORIZATION_TYPE_URL]: Authorization
}
