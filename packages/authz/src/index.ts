/**
 * @kmesh-ts/authz — the Istio L4 authorization model (`istio.security.Authorization`) as ztunnel evaluates it
 * (docs/reference/istio-l4-authz.md §2–§5), in pure TypeScript. No Node built-ins; @kmesh-ts/xds-client is used
 * for its types only.
 */
export {
  evaluate,
  applicablePolicies,
  canonicalAddress,
  workloadIdentity,
  policyKey,
  type EvaluateInput,
  type Decision,
  type DryRunResult,
  type DestinationWorkload,
} from './evaluate.js'
export { compileRules, firstMatchingRule, type Identity, type Connection, type CompiledRules } from './match.js'
export { Scope, Action } from './wire.js'
export { match, clause, rule, exact, prefix, suffix, presence, address, policy, type PolicyInit } from './build.js'
