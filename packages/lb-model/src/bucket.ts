/**
 * Keeping endpoint indexes dense (docs/reference/kmesh-dataplane.md §3, "Endpoint index maintenance"):
 * the kernel picks `random % count + 1`, so a hole in 1..count would make some connects miss.
 */

export type EndpointRemovalPlan = { moveFrom: number; moveTo: number; deleteIndex: number } | { deleteIndex: number }

/**
 * The map writes that remove the endpoint at 1-based `removeIndex` from `bucket` (the backend uids
 * at indexes 1..count of one (service, priority)). Apply in this order, so that a concurrent
 * connect never lands on a missing key:
 * 1. `moveFrom` given: write the entry at `moveFrom` (the last one) to key `moveTo` (the hole);
 * 2. decrement the service's `prio_endpoint_count` for this priority;
 * 3. delete key `deleteIndex` (always the old last index, `count`).
 * Removing the last entry (including the only one) needs no move.
 */
export function planEndpointRemoval(bucket: readonly number[], removeIndex: number): EndpointRemovalPlan {
  const count = bucket.length
  if (!Number.isInteger(removeIndex) || removeIndex < 1 || removeIndex > count) {
    throw new RangeError(`planEndpointRemoval: index ${removeIndex} is outside 1..${count} of this bucket`)
  }
  if (removeIndex === count) return { deleteIndex: count }
  return { moveFrom: count, moveTo: removeIndex, deleteIndex: count }
}
