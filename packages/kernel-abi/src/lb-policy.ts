import { LB_POLICY_FAILOVER, LB_POLICY_PASSTHROUGH, LB_POLICY_RANDOM, LB_POLICY_STRICT } from './constants.js'

/** `service_value.lb_policy` by name: 0..2 as upstream Kmesh; Passthrough is the kmesh-ts extension. */
export const LB_POLICY = {
  Random: LB_POLICY_RANDOM,
  Strict: LB_POLICY_STRICT,
  Failover: LB_POLICY_FAILOVER,
  Passthrough: LB_POLICY_PASSTHROUGH,
} as const

export type LbPolicy = (typeof LB_POLICY)[keyof typeof LB_POLICY]

/** The name of a policy number, or undefined for a number the kernel refuses (-EINVAL). */
export function lbPolicyName(value: number): keyof typeof LB_POLICY | undefined {
  for (const [name, v] of Object.entries(LB_POLICY)) if (v === value) return name as keyof typeof LB_POLICY
  return undefined
}
