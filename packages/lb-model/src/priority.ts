/**
 * From a service's `loadBalancer` to what the kernel stores: the `lb_policy` number and the
 * priority bucket of each endpoint (docs/reference/kmesh-dataplane.md §3, docs/reference/local-config.md §5.1).
 */
import { LB_POLICY, PRIO_COUNT } from '@kmesh-ts/kernel-abi'
import { isNetworkFirst, localityRank, maxRank, type PeerInfo, type Scope } from './rank.js'

// Both are the C headers' (generated into @kmesh-ts/kernel-abi), re-exported for the model's users:
// PRIO_COUNT is the kernel's priority buckets per service (`prio_endpoint_count[PRIO_COUNT]`), 0 best; LB_POLICY
// the `lb_policy` values, 0..2 upstream Kmesh's, 3 Passthrough a kmesh-ts extension (Kmesh returns -EINVAL for it).
export { LB_POLICY, PRIO_COUNT }

export type LbMode = 'Standard' | 'Strict' | 'Failover' | 'Passthrough'

export interface LoadBalancing {
  routingPreferences: Scope[]
  mode: LbMode
}

/**
 * The kernel policy for a service: Standard or no `loadBalancer` at all is Random. Strict is Strict, except
 * with NETWORK first: ztunnel then keeps every same-network endpoint (rank ≥ len) and takes the best-ranked
 * group among them, which is the kernel's Failover over the buckets {@link endpointPriority} gives.
 */
export function lbPolicyOf(lb: LoadBalancing | undefined): 0 | 1 | 2 | 3 {
  switch (lb?.mode) {
    case undefined:
    case 'Standard':
      return LB_POLICY.Random
    case 'Strict':
      return isNetworkFirst(lb.routingPreferences) ? LB_POLICY.Failover : LB_POLICY.Strict
    case 'Failover':
      return LB_POLICY.Failover
    case 'Passthrough':
      return LB_POLICY.Passthrough
  }
}

/**
 * The bucket (0 best .. 6) the map writer puts an endpoint in, or `undefined` when the mode
 * leaves the endpoint out of the endpoint map.
 *
 * - Standard / no `loadBalancer`: always 0. ztunnel ignores routing preferences in this mode.
 * - Failover: `maxRank(prefs) − rank`, so the best possible rank is bucket 0 and the kernel's
 *   "first non-empty bucket" is ztunnel's "keep only the top-ranked group". Ranks more than 6
 *   levels below the best are clamped into bucket 6 and share it (the kernel has 7 buckets).
 *   That needs maxRank(prefs) > 6: a NETWORK-first list of 4+ scopes, or a list with repeated
 *   scopes. With distinct scopes only other-network endpoints can be clamped; same-network ones
 *   land in 0..len−1 ≤ 5, so same network still always wins.
 * - Strict: `undefined` unless the endpoint passes ztunnel's strict filter (rank ≥ len(prefs)). Without
 *   NETWORK-first the filter means every scope matches: bucket 0, and the kernel's Strict draws from it.
 *   With NETWORK-first the filter keeps every same-network endpoint and ztunnel then takes the best-ranked
 *   group among them: those get `maxRank − rank` (0..len−1) like Failover, and {@link lbPolicyOf} gives the
 *   kernel Failover, whose first non-empty bucket is exactly that group. Nothing passing is still refused.
 * - Passthrough: `undefined`; no endpoint is used, the connect goes to the original destination.
 */
export function endpointPriority(
  client: PeerInfo | undefined,
  endpoint: PeerInfo,
  lb: LoadBalancing | undefined,
): number | undefined {
  switch (lb?.mode) {
    case undefined:
    case 'Standard':
      return 0
    case 'Passthrough':
      return undefined
    case 'Strict': {
      const prefs = lb.routingPreferences
      const rank = localityRank(client, endpoint, prefs)
      if (rank < prefs.length) return undefined
      return isNetworkFirst(prefs) ? Math.min(maxRank(prefs) - rank, PRIO_COUNT - 1) : 0
    }
    case 'Failover': {
      const prefs = lb.routingPreferences
      return Math.min(maxRank(prefs) - localityRank(client, endpoint, prefs), PRIO_COUNT - 1)
    }
  }
}
