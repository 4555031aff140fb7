/**
 * The kernel's endpoint choice for one connect (docs/reference/kmesh-dataplane.md §3, `service_manager`
 * and the Random/Strict/Failover handlers), as a pure function of the maps' contents and the
 * u32 from `bpf_get_prandom_u32()`.
 */
import { LB_POLICY, PRIO_COUNT } from './priority.js'

const U32_MAX = 0xffff_ffff

/**
 * What the kernel's maps hold for one service: endpoint backend uids per priority bucket, in
 * index order (`buckets[p][i]` is the backend at `backend_index` i+1 of priority p). Buckets
 * missing at the end are empty. At most {@link PRIO_COUNT} buckets.
 */
export interface ServiceSnapshot {
  lbPolicy: 0 | 1 | 2 | 3
  buckets: readonly (readonly number[])[]
}

export type Selection =
  | { kind: 'endpoint'; priority: number; index: number /* 1-based */; backendUid: number }
  /** lbPolicy 3: the connect is left untouched. */
  | { kind: 'passthrough' }
  /** Nothing usable: the kmesh-ts kernel refuses the connect (ECONNREFUSED). */
  | { kind: 'no-endpoint' }
  /** lbPolicy outside 0..3: the kernel returns -EINVAL. */
  | { kind: 'invalid-policy' }

/** The bucket a service's policy draws from (docs/reference/kmesh-dataplane.md §3), given its endpoint counts. */
export type PriorityChoice =
  | { kind: 'bucket'; priority: number; count: number }
  | { kind: 'passthrough' }
  | { kind: 'no-endpoint' }
  | { kind: 'invalid-policy' }

/**
 * - Random (0) and Strict (1): bucket 0 only; an empty bucket 0 is 'no-endpoint' (Strict never looks further).
 * - Failover (2): the first bucket 0..6 whose count is not 0; all zero is 'no-endpoint'.
 * - Passthrough (3): 'passthrough'. Any other value: 'invalid-policy'.
 * `counts[p]` is the service record's `prio_endpoint_count[p]`, whatever the endpoint map holds.
 */
export function choosePriority(lbPolicy: number, counts: readonly number[]): PriorityChoice {
  switch (lbPolicy) {
    case LB_POLICY.Random:
    case LB_POLICY.Strict: {
      const count = counts[0] ?? 0
      return count === 0 ? { kind: 'no-endpoint' } : { kind: 'bucket', priority: 0, count }
    }
    case LB_POLICY.Failover:
      for (let p = 0; p < PRIO_COUNT; p++) {
        const count = counts[p] ?? 0
        if (count !== 0) return { kind: 'bucket', priority: p, count }
      }
      return { kind: 'no-endpoint' }
    case LB_POLICY.Passthrough:
      return { kind: 'passthrough' }
    default:
      return { kind: 'invalid-policy' }
  }
}

/** The 1-based index the kernel takes in a bucket of `count` endpoints: `random % count + 1` on u32 values. */
export function indexFor(random: number, count: number): number {
  return (random % count) + 1
}

/**
 * The kernel's choice given a u32 random number `random`.
 * - Random (0) and Strict (1): bucket 0 only, `index = random % count + 1`; empty → 'no-endpoint'.
 * - Failover (2): the first non-empty bucket 0..6, same index rule; all empty → 'no-endpoint'.
 *   No fall-through to a later bucket once one is chosen.
 * - Passthrough (3): 'passthrough'. Anything else: 'invalid-policy'.
 *
 * Throws RangeError when `random` is not a u32 or the snapshot has more than PRIO_COUNT buckets:
 * neither can come from the kernel.
 */
export function selectEndpoint(service: ServiceSnapshot, random: number): Selection {
  checkRandom('selectEndpoint', random)
  if (service.buckets.length > PRIO_COUNT) {
    throw new RangeError(
      `selectEndpoint: service has ${service.buckets.length} priority buckets, the kernel holds PRIO_COUNT = ${PRIO_COUNT}`,
    )
  }
  const choice = choosePriority(
    service.lbPolicy,
    service.buckets.map((b) => b.length),
  )
  if (choice.kind !== 'bucket') return choice
  const index = indexFor(random, choice.count)
  return {
    kind: 'endpoint',
    priority: choice.priority,
    index,
    backendUid: service.buckets[choice.priority]?.[index - 1] as number,
  }
}

export function checkRandom(fn: string, random: number): void {
  if (!Number.isInteger(random) || random < 0 || random > U32_MAX) {
    throw new RangeError(`${fn}: random must be a u32 (0..${U32_MAX}), got ${random}`)
  }
}
