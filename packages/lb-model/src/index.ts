export { localityRank, maxRank, isNetworkFirst, type Scope, type Locality, type PeerInfo } from './rank.js'
export {
  PRIO_COUNT,
  LB_POLICY,
  lbPolicyOf,
  endpointPriority,
  type LbMode,
  type LoadBalancing,
} from './priority.js'
export { selectEndpoint, type ServiceSnapshot, type Selection } from './select.js'
export { planEndpointRemoval, type EndpointRemovalPlan } from './bucket.js'
export { choosePriority, indexFor, type PriorityChoice } from './select.js'
export { ipToBytes, bytesToText, familyOf, isV4Mapped, type Family } from './ip.js'
export {
  indexSnapshot,
  type MapSnapshot,
  type FrontendRecord,
  type ServiceRecord,
  type EndpointRecord,
  type BackendRecord,
  type PortRecord,
  type WaypointRecord,
} from './snapshot.js'
export {
  resolve,
  ERRNO,
  type ConnectInput,
  type Resolution,
  type Trace,
  type LeaveReason,
  type RefuseReason,
} from './resolve.js'
export { endpointSlots, slotBudget, SLOT_BUDGET_MIN, SLOTS_PER_ENDPOINT, type EndpointSlots } from './weights.js'
export {
  loadBalancingOf,
  ztunnelChoice,
  kernelChoice,
  describeExclusion,
  type HealthPolicy,
  type ServiceLoadBalancing,
  type KubernetesServiceSettings,
  type MeshEndpoint,
  type MeshChoice,
  type ExclusionReason,
} from './istio.js'
export {
  explain,
  residueProbability,
  type Explanation,
  type ExplainOutcome,
  type ExplainSource,
  type ExplainDestination,
} from './explain.js'
