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
