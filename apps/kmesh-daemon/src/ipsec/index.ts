export { IpsecController, ipsecDefaults, type IpsecControllerOptions, type ReconcileResult } from './controller.js'
export {
  desiredRules,
  planSteps,
  policyKey,
  sameState,
  stateKey,
  type DesiredRules,
  type RuleSet,
  type Step,
} from './rules.js'
export {
  nodeInfoDocument,
  nodeInfoFromObject,
  nodeInfoPath,
  parseNodeInfo,
  readNodeInfoDir,
  removeNodeInfo,
  writeNodeInfo,
  NodeInfoError,
} from './node-info.js'
export {
  attachBatch,
  attachIngress,
  detachBatch,
  detachIngress,
  TC_HANDLE,
  TC_PRIO,
  TcError,
  type TcAttachment,
} from './tc.js'
export { DirNodeInfoSource, type DirNodeInfoSourceOptions, type NodeInfoSource } from './node-info-source.js'
export {
  describeApiError,
  KMESH_NODE_INFO,
  KubernetesNodeInfoSource,
  kubernetesNodeInfoDefaults,
  loadKubeConfig,
  type KubernetesNodeInfoEvent,
  type KubernetesNodeInfoSourceOptions,
} from './node-info-k8s.js'
export { nodeInfoSourceFor } from './source-from-cli.js'
export {
  discoverNodeNics,
  discoverPodVeths,
  hostPeersFrom,
  nodeNicsFrom,
  InterfaceDiscoveryError,
  type IpLink,
  type IpRoute,
  type NodeNics,
} from './interfaces.js'
export { PeerIds } from './peer-ids.js'
