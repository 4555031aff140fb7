// Enum values of the Istio workload and authorization APIs (docs/reference/istio-workload-api.md §1.2, §1.3).
// Each is a const object (name -> number) plus a type of its values. test/proto-fields.test.ts checks them
// against both the reference table and the loaded .proto files.

export const TunnelProtocol = { NONE: 0, HBONE: 1, LEGACY_ISTIO_MTLS: 2 } as const
export type TunnelProtocol = (typeof TunnelProtocol)[keyof typeof TunnelProtocol]

export const WorkloadStatus = { HEALTHY: 0, UNHEALTHY: 1 } as const
export type WorkloadStatus = (typeof WorkloadStatus)[keyof typeof WorkloadStatus]

export const WorkloadType = { DEPLOYMENT: 0, CRONJOB: 1, POD: 2, JOB: 3 } as const
export type WorkloadType = (typeof WorkloadType)[keyof typeof WorkloadType]

export const NetworkMode = { STANDARD: 0, HOST_NETWORK: 1 } as const
export type NetworkMode = (typeof NetworkMode)[keyof typeof NetworkMode]

export const AppProtocol = { UNKNOWN: 0, HTTP11: 1, HTTP2: 2, GRPC: 3, TCP: 4, TLS: 5 } as const
export type AppProtocol = (typeof AppProtocol)[keyof typeof AppProtocol]

export const IPFamilies = { AUTOMATIC: 0, IPV4_ONLY: 1, IPV6_ONLY: 2, DUAL: 3 } as const
export type IPFamilies = (typeof IPFamilies)[keyof typeof IPFamilies]

export const ApplicationTunnelProtocol = { NONE: 0, PROXY: 1 } as const
export type ApplicationTunnelProtocol = (typeof ApplicationTunnelProtocol)[keyof typeof ApplicationTunnelProtocol]

export const ServiceVisibility = { PUBLIC: 0, NAMESPACE: 1 } as const
export type ServiceVisibility = (typeof ServiceVisibility)[keyof typeof ServiceVisibility]

export const LoadBalancingScope = {
  UNSPECIFIED_SCOPE: 0,
  REGION: 1,
  ZONE: 2,
  SUBZONE: 3,
  NODE: 4,
  CLUSTER: 5,
  NETWORK: 6,
} as const
export type LoadBalancingScope = (typeof LoadBalancingScope)[keyof typeof LoadBalancingScope]

export const LoadBalancingMode = { UNSPECIFIED_MODE: 0, STRICT: 1, FAILOVER: 2, PASSTHROUGH: 3 } as const
export type LoadBalancingMode = (typeof LoadBalancingMode)[keyof typeof LoadBalancingMode]

export const HealthPolicy = { ONLY_HEALTHY: 0, ALLOW_ALL: 1 } as const
export type HealthPolicy = (typeof HealthPolicy)[keyof typeof HealthPolicy]

export const AuthorizationScope = { GLOBAL: 0, NAMESPACE: 1, WORKLOAD_SELECTOR: 2 } as const
export type AuthorizationScope = (typeof AuthorizationScope)[keyof typeof AuthorizationScope]

export const AuthorizationAction = { ALLOW: 0, DENY: 1 } as const
export type AuthorizationAction = (typeof AuthorizationAction)[keyof typeof AuthorizationAction]

/** Each TS enum above paired with the full name of the proto enum it mirrors. */
export const PROTO_ENUMS = {
  'istio.workload.TunnelProtocol': TunnelProtocol,
  'istio.workload.WorkloadStatus': WorkloadStatus,
  'istio.workload.WorkloadType': WorkloadType,
  'istio.workload.NetworkMode': NetworkMode,
  'istio.workload.AppProtocol': AppProtocol,
  'istio.workload.IPFamilies': IPFamilies,
  'istio.workload.ApplicationTunnel.Protocol': ApplicationTunnelProtocol,
  'istio.workload.Service.Visibility': ServiceVisibility,
  'istio.workload.LoadBalancing.Scope': LoadBalancingScope,
  'istio.workload.LoadBalancing.Mode': LoadBalancingMode,
  'istio.workload.LoadBalancing.HealthPolicy': HealthPolicy,
  'istio.security.Scope': AuthorizationScope,
  'istio.security.Action': AuthorizationAction,
} as const
