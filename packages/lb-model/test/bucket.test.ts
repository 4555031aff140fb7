import t from 'tap'
import { planEndpointRemoval } from '../src/index.js'

/** Applies a plan the way the map writer does: move, then delete the last key. Keys are 1-based. */
function apply(bucket: readonly number[], removeIndex: number): number[] {
  const map = new Map(bucket.map((uid, i) => [i + 1, uid]))
  const plan = planEndpointRemoval(bucket, removeIndex)
  if ('moveFrom' in plan) map.set(plan.moveTo, map.get(plan.moveFrom) as number)
  map.delete(plan.deleteIndex)
  const out: number[] = []
  for (let i = 1; i <= map.size; i++) {
    if (!map.has(i)) throw new Error(`hole at ${i}`)
    out.push(map.get(i) as number)
  }
  return out
}

t.test('remove the last entry: delete only', async (t) => {
  t.same(planEndpointRemoval([10, 20, 30], 3), { deleteIndex: 3 })
  t.same(apply([10, 20, 30], 3), [10, 20])
})

t.test('remove a middle entry: last moves into the hole', async (t) => {
  t.same(planEndpointRemoval([10, 20, 30], 2), { moveFrom: 3, moveTo: 2, deleteIndex: 3 })
  t.same(apply([10, 20, 30], 2), [10, 30])
  t.same(planEndpointRemoval([10, 20, 30, 40], 1), { moveFrom: 4, moveTo: 1, deleteIndex: 4 })
  t.same(apply([10, 20, 30, 40], 1), [40, 20, 30])
})

t.test('remove the only entry', async (t) => {
  t.same(planEndpointRemoval([10], 1), { deleteIndex: 1 })
  t.same(apply([10], 1), [])
})

t.test('every removal keeps indexes dense and loses only the removed uid', async (t) => {
  for (let n = 1; n <= 12; n++) {
    const bucket = Array.from({ length: n }, (_, i) => 100 + i)
    for (let k = 1; k <= n; k++) {
      const after = apply(bucket, k)
      t.same(
        [...after].sort((a, b) => a - b),
        bucket.filter((_, i) => i !== k - 1),
        `n=${n} remove ${k}`,
        { diagnostic: false },
      )
    }
  }
})

t.test('index outside 1..count is refused', async (t) => {
  for (const i of [0, 4, -1, 1.5, NaN]) t.throws(() => planEndpointRemoval([1, 2, 3], i), RangeError, `index ${i}`)
  t.throws(() => planEndpointRemoval([], 1), RangeError, 'empty bucket')
})
