export { IpsecController, ipsecDefaults, type IpsecControllerOptions, type ReconcileResult } from './controller.js'
export { desiredRules, planSteps, policyKey, sameState, stateKey, type DesiredRules, type RuleSet, type Step } from './rules.js'
export { nodeInfoDocument, nodeInfoPath, parseNodeInfo, readNodeInfoDir, removeNodeInfo, writeNodeInfo, NodeInfoError } from './node-info.js'
export { attachBatch, attachIngress, detachBatch, detachIngress, TC_HANDLE, TC_PRIO, TcError, type TcAttachment } from './tc.js'
