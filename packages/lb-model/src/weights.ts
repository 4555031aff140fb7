/**
 * Capacity weights in an unchanged kernel (issue 4, "Beyond Kmesh"): the kernel picks a slot uniformly
 * (`random % count + 1`), so an endpoint with more slots in its bucket is picked more often. Each endpoint gets
 * slots in proportion to its workload `capacity` (ztunnel: `capacity.unwrap_or(1)`, docs/reference/
 * istio-workload-api.md §1.2, §3.6). The four records keep Kmesh's byte layout; only the number of endpoint
 * entries grows. The daemon lays buckets out with this rule, and the model computes probabilities from it.
 *
 * Rule, per (service, priority) bucket:
 * 1. capacity 0: no slot (never chosen; with nothing else left the connect is refused);
 * 2. divide every capacity by their greatest common divisor: equal capacities give one slot each, exactly as
 *    without weights, and 3:6:9 gives 1:2:3;
 * 3. when the reduced total exceeds the bucket's budget, max(SLOT_BUDGET_MIN, SLOTS_PER_ENDPOINT × endpoints),
 *    endpoints whose exact share is below one slot get one, and the rest of the budget is apportioned over the
 *    others by largest remainder (ties to the lower uid). The total is then exactly the budget.
 * Precision: within the budget the shares are exact (up to the kernel's modulo bias, below count / 2^32).
 * Beyond it, an endpoint's share is off by less than 1/budget when no endpoint needed the one-slot floor; the
 * floor lifts endpoints whose exact share is below 1/budget to exactly 1/budget and takes that from the others. `maxError` reports the actual largest difference.
 */

/** The smallest slot budget of a bucket. */
export const SLOT_BUDGET_MIN = 256
/** The budget grows with the bucket: 4 slots per endpoint on average before shares are approximated. */
export const SLOTS_PER_ENDPOINT = 4

export interface EndpointSlots {
  /** uid → number of slots (≥ 1); endpoints with capacity 0 are absent. */
  slots: Map<number, number>
  /** True when every share equals capacity / total capacity. */
  exact: boolean
  /** max over endpoints of |slots/Σslots − capacity/Σcapacity|. */
  maxError: number
}

function gcd(a: number, b: number): number {
  while (b !== 0) [a, b] = [b, a % b]
  return a
}

export function slotBudget(endpoints: number): number {
  return Math.max(SLOT_BUDGET_MIN, SLOTS_PER_ENDPOINT * endpoints)
}

/** Slots for one bucket's endpoints, uid → capacity (a u32). Deterministic: the same input gives the same slots. */
export function endpointSlots(capacities: ReadonlyMap<number, number>): EndpointSlots {
  const live = [...capacities]
    .filter(([, c]) => {
      if (!Number.isInteger(c) || c < 0 || c > 0xffff_ffff)
        throw new RangeError(`endpointSlots: capacity must be a u32, got ${c}`)
      return c > 0
    })
    .sort((a, b) => a[0] - b[0])
  const slots = new Map<number, number>()
  if (live.length === 0) return { slots, exact: true, maxError: 0 }
  const g = live.reduce((acc, [, c]) => gcd(acc, c), 0)
  const reduced = live.map(([uid, c]) => [uid, c / g] as const)
  const total = reduced.reduce((acc, [, s]) => acc + s, 0)
  const budget = slotBudget(live.length)
  if (total <= budget) {
    for (const [uid, s] of reduced) slots.set(uid, s)
    return { slots, exact: true, maxError: 0 }
  }
  // Endpoints whose exact share is below one slot get one (the floor); the rest of the budget is apportioned
  // over the others by largest remainder. Repeat until no other endpoint falls below one slot. BigInt keeps
  // seats × capacity exact for any u32 capacity.
  let floored = new Set<number>()
  for (;;) {
    const rest = reduced.filter(([uid]) => !floored.has(uid))
    const seats = BigInt(budget - floored.size)
    const restTotal = BigInt(rest.reduce((acc, [, c]) => acc + c, 0))
    const below = rest.filter(([, c]) => seats * BigInt(c) < restTotal).map(([uid]) => uid)
    if (below.length > 0 && floored.size + below.length < reduced.length) {
      floored = new Set([...floored, ...below])
      continue
    }
    const shares = rest.map(([uid, c]) => ({
      uid,
      floor: Number((seats * BigInt(c)) / restTotal),
      rem: (seats * BigInt(c)) % restTotal,
    }))
    let left = Number(seats) - shares.reduce((acc, x) => acc + x.floor, 0)
    for (const x of [...shares].sort((p, q) => (p.rem === q.rem ? p.uid - q.uid : p.rem > q.rem ? -1 : 1))) {
      if (left <= 0) break
      x.floor++
      left--
    }
    for (const uid of floored) slots.set(uid, 1)
    for (const x of shares) slots.set(x.uid, Math.max(1, x.floor))
    break
  }
  const sum = [...slots.values()].reduce((a, b) => a + b, 0)
  let maxError = 0
  for (const [uid, s] of reduced) maxError = Math.max(maxError, Math.abs(slots.get(uid)! / sum - s / total))
  return { slots, exact: maxError === 0, maxError }
}
