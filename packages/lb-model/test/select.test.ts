import t from 'tap'
import { selectEndpoint, type Selection, type ServiceSnapshot } from '../src/index.js'

const U32_MAX = 0xffff_ffff
const svc = (lbPolicy: number, ...buckets: number[][]): ServiceSnapshot => ({ lbPolicy, buckets }) as ServiceSnapshot
const endpoint = (priority: number, index: number, backendUid: number): Selection => ({
  kind: 'endpoint',
  priority,
  index,
  backendUid,
})

t.test('Random: bucket 0, index = r % count + 1', async (t) => {
  const s = svc(0, [101, 102, 103])
  t.same(selectEndpoint(s, 0), endpoint(0, 1, 101))
  t.same(selectEndpoint(s, 1), endpoint(0, 2, 102))
  t.same(selectEndpoint(s, 2), endpoint(0, 3, 103))
  t.same(selectEndpoint(s, 3), endpoint(0, 1, 101))
  t.same(selectEndpoint(s, 1000), endpoint(0, 2, 102)) // 1000 % 3 = 1
  const wrong: number[] = []
  for (let r = 0; r < 3000; r++) {
    const sel = selectEndpoint(s, r)
    if (sel.kind !== 'endpoint' || sel.index !== (r % 3) + 1 || sel.backendUid !== 100 + sel.index) wrong.push(r)
  }
  t.same(wrong, [], 'r = 0..2999 all pick r % 3 + 1')
})

t.test('Random and Strict ignore buckets 1..6', async (t) => {
  for (const policy of [0, 1]) {
    t.same(selectEndpoint(svc(policy, [], [201, 202], [301]), 5), { kind: 'no-endpoint' }, `policy ${policy}`)
    t.same(selectEndpoint(svc(policy, [7], [201, 202]), 5), endpoint(0, 1, 7), `policy ${policy}`)
    t.same(selectEndpoint(svc(policy), 5), { kind: 'no-endpoint' }, `policy ${policy}, no buckets`)
  }
})

t.test('Failover: first non-empty bucket 0..6', async (t) => {
  t.same(selectEndpoint(svc(2, [1, 2], [11, 12, 13]), 4), endpoint(0, 1, 1))
  t.same(selectEndpoint(svc(2, [], [11, 12, 13]), 4), endpoint(1, 2, 12))
  t.same(selectEndpoint(svc(2, [], [], [], [], [], [], [61, 62]), 7), endpoint(6, 2, 62))
  t.same(selectEndpoint(svc(2, [], [], [31], [], [51]), U32_MAX), endpoint(2, 1, 31))
  t.same(selectEndpoint(svc(2, [], [], [], [], [], [], []), 7), { kind: 'no-endpoint' })
  t.same(selectEndpoint(svc(2), 7), { kind: 'no-endpoint' })
  for (let p = 0; p < 7; p++) {
    const buckets: number[][] = [[], [], [], [], [], [], []]
    buckets[p] = [p * 10 + 1, p * 10 + 2]
    for (let later = p + 1; later < 7; later++) buckets[later] = [999]
    for (const r of [0, 1, 2, 3, U32_MAX - 1, U32_MAX]) {
      t.same(selectEndpoint(svc(2, ...buckets), r), endpoint(p, (r % 2) + 1, p * 10 + (r % 2) + 1), `prio ${p}, r=${r}`)
    }
  }
})

t.test('modulo on values near 2^32 equals C u32 arithmetic', async (t) => {
  const uids = (n: number): number[] => Array.from({ length: n }, (_, i) => 1000 + i)
  // 2^32 - 1 = 4294967295 = 3 * 5 * 17 * 257 * 65537
  const cases: [number, number, number][] = [
    // [count, r, expected 1-based index] computed by hand
    [3, U32_MAX, 1], // 4294967295 % 3 = 0
    [2, U32_MAX, 2], // odd -> 1
    [7, U32_MAX, 4], // 4294967295 = 7 * 613566756 + 3
    [10, U32_MAX, 6], // ...5
    [65536, U32_MAX, 65536], // low 16 bits all ones
    [65537, U32_MAX, 1], // divides exactly
    [1000, U32_MAX - 295, 1], // 4294967000 % 1000 = 0
    [1, U32_MAX, 1],
    [4, 0x8000_0000, 1],
    [5, 0x8000_0001, 5], // 2147483649 % 5 = 4; as an i32 (-2147483647) C would give -2
  ]
  for (const [count, r, index] of cases) {
    t.same(selectEndpoint(svc(0, uids(count)), r), endpoint(0, index, 1000 + index - 1), `count ${count}, r ${r}`)
  }
  // cross-check against BigInt arithmetic for many r near the top
  for (const count of [3, 7, 13, 100, 65535, 100000]) {
    const s = svc(1, uids(count))
    for (let r = U32_MAX; r > U32_MAX - 200; r--) {
      const want = Number(BigInt(r) % BigInt(count)) + 1
      const sel = selectEndpoint(s, r)
      if (sel.kind !== 'endpoint' || sel.index !== want) t.fail(`count ${count}, r ${r}: ${JSON.stringify(sel)}`)
    }
  }
  t.pass('BigInt cross-check done')
})

t.test('Passthrough and invalid policies', async (t) => {
  t.same(selectEndpoint(svc(3, [1, 2]), 0), { kind: 'passthrough' })
  t.same(selectEndpoint(svc(3), 0), { kind: 'passthrough' })
  for (const p of [4, 5, 255, -1, 0xffff_ffff, 1.5, NaN]) {
    t.same(selectEndpoint(svc(p, [1, 2]), 0), { kind: 'invalid-policy' }, `lbPolicy ${p}`)
  }
})

t.test('inputs the kernel cannot produce are rejected', async (t) => {
  for (const r of [-1, 2 ** 32, 1.5, NaN, Infinity]) {
    t.throws(() => selectEndpoint(svc(0, [1]), r), RangeError, `random ${r}`)
  }
  t.throws(() => selectEndpoint(svc(2, [], [], [], [], [], [], [], [1]), 0), RangeError, '8 buckets')
})

t.test('property: over r = 0..N-1 each index of the chosen bucket is picked equally often', async (t) => {
  // For N a multiple of count the u32 modulo is exactly uniform; otherwise the first N % count
  // indexes get one extra hit (the accepted modulo bias, docs/reference/kmesh-dataplane.md §3).
  let seed = 12345
  const next = (n: number): number => {
    seed = (Math.imul(seed, 1103515245) + 12345) >>> 0
    return seed % n
  }
  for (let trial = 0; trial < 60; trial++) {
    const policy = next(3)
    const buckets: number[][] = Array.from({ length: 7 }, (_, p) =>
      next(3) === 0 ? [] : Array.from({ length: 1 + next(20) }, (_, i) => p * 100 + i),
    )
    const chosen = policy === 2 ? buckets.findIndex((b) => b.length > 0) : 0
    const count = chosen < 0 ? 0 : (buckets[chosen] as number[]).length
    const start = trial % 2 === 0 ? 0 : U32_MAX - 5000 // also a window ending at 2^32-1
    const n = 1 + next(5000)
    const hits = new Map<number, number>()
    let ok = true
    for (let r = start; r < start + n && r <= U32_MAX; r++) {
      const sel = selectEndpoint(svc(policy, ...buckets), r)
      if (count === 0) {
        ok &&= sel.kind === 'no-endpoint'
        continue
      }
      if (sel.kind !== 'endpoint' || sel.priority !== chosen) {
        ok = false
        continue
      }
      ok &&= sel.backendUid === (buckets[chosen] as number[])[sel.index - 1]
      hits.set(sel.index, (hits.get(sel.index) ?? 0) + 1)
    }
    t.ok(ok, `trial ${trial}: every pick is in bucket ${chosen} and names its backend`)
    if (count === 0) continue
    const total = Math.min(start + n, U32_MAX + 1) - start
    const counts = Array.from({ length: count }, (_, i) => hits.get(i + 1) ?? 0)
    const lo = Math.floor(total / count)
    t.ok(
      counts.every((c) => c === lo || c === lo + 1) && counts.reduce((a, b) => a + b, 0) === total,
      `trial ${trial}: ${total} picks over ${count} endpoints differ by at most one`,
    )
    if (start === 0 && total % count === 0)
      t.ok(
        counts.every((c) => c === lo),
        `trial ${trial}: exactly uniform`,
      )
  }
})
