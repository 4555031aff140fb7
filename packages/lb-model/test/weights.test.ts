import t from 'tap'
import { endpointSlots, slotBudget, SLOT_BUDGET_MIN } from '../src/index.js'

const slotsOf = (caps: Record<number, number>): Record<number, number> =>
  Object.fromEntries(endpointSlots(new Map(Object.entries(caps).map(([u, c]) => [Number(u), c]))).slots)

t.test('equal capacities give one slot each: exactly the unweighted layout', async (t) => {
  t.same(slotsOf({ 1: 1, 2: 1, 3: 1 }), { 1: 1, 2: 1, 3: 1 })
  t.same(slotsOf({ 1: 7, 2: 7 }), { 1: 1, 2: 1 })
})

t.test('ratios are reduced by their gcd and kept exactly within the budget', async (t) => {
  t.same(slotsOf({ 1: 3, 2: 6, 3: 9 }), { 1: 1, 2: 2, 3: 3 })
  t.same(slotsOf({ 1: 1, 2: 100 }), { 1: 1, 2: 100 })
  const r = endpointSlots(
    new Map([
      [1, 2],
      [2, 1],
    ]),
  )
  t.same([r.exact, r.maxError], [true, 0])
})

t.test('capacity 0 is never chosen', async (t) => {
  t.same(slotsOf({ 1: 0, 2: 5 }), { 2: 1 })
  t.same(slotsOf({ 1: 0 }), {}, 'nothing left: the bucket is empty and the kernel refuses (fail fast)')
})

t.test('beyond the budget: largest remainder, at least one slot, error reported', async (t) => {
  const r = endpointSlots(
    new Map([
      [1, 1],
      [2, 1000],
    ]),
  )
  const s = Object.fromEntries(r.slots)
  t.equal(s[1]! + s[2]!, SLOT_BUDGET_MIN, 'the budget is used exactly')
  t.same(s, { 1: 1, 2: 255 })
  t.notOk(r.exact)
  t.ok(r.maxError < 1 / SLOT_BUDGET_MIN, `error ${r.maxError} < 1/${SLOT_BUDGET_MIN}`)
  const huge = endpointSlots(
    new Map([
      [1, 0xffffffff],
      [2, 1],
      [3, 0xfffffffe],
    ]),
  )
  t.same(Object.fromEntries(huge.slots), { 1: 128, 2: 1, 3: 127 }, 'u32 capacities stay exact in the arithmetic')
  t.equal(slotBudget(1000), 4000, 'the budget grows with the bucket')
})

t.test('deterministic and independent of insertion order', async (t) => {
  const a = endpointSlots(
    new Map([
      [5, 3],
      [1, 1000],
      [9, 7],
    ]),
  )
  const b = endpointSlots(
    new Map([
      [9, 7],
      [5, 3],
      [1, 1000],
    ]),
  )
  t.same([...a.slots].sort(), [...b.slots].sort())
})

t.test('random buckets: totals, floors and the precision bound', async (t) => {
  let seed = 42
  const rnd = (n: number): number => {
    seed = (seed * 1103515245 + 12345) % 2147483648
    return seed % n
  }
  let approximated = 0
  for (let i = 0; i < 2000; i++) {
    const caps = new Map(
      Array.from(
        { length: 1 + rnd(40) },
        (_, k) => [k + 1, rnd(5) === 0 ? rnd(5000) : 1 + rnd(20)] as [number, number],
      ),
    )
    const r = endpointSlots(caps)
    const live = [...caps].filter(([, c]) => c > 0)
    const total = live.reduce((a, [, c]) => a + c, 0)
    const sum = [...r.slots.values()].reduce((a, b) => a + b, 0)
    const budget = slotBudget(live.length)
    if ([...r.slots.values()].some((s) => s < 1) || r.slots.size !== live.length) {
      t.fail(`every live endpoint has ≥ 1 slot: ${[...caps]}`)
      continue
    }
    if (r.exact) continue
    approximated++
    if (sum !== budget) t.fail(`approximated buckets use the budget exactly (${sum} vs ${budget})`)
    const floored = live.some(([, c]) => c * budget < total)
    if (!floored && r.maxError >= 1 / budget) t.fail(`error ${r.maxError} ≥ 1/${budget} without floors`)
  }
  t.ok(approximated > 50, `${approximated} of 2000 random buckets needed approximation, all within the bounds`)
})
