/**
 * Measures (prints, does not assert) how fast records reach a real hash map: one bpf_map_update_elem per record
 * versus one bpf_map_update_batch for all of them, 100k records of the backend map's shape (4-byte key, 80-byte
 * value). toolchain.md has the C figures for comparison.
 */
import t from 'tap'
import { privilegedSkip } from '@kmesh-ts/testkit'
import { BpfMap, backendKey, backendValue, mapSpecs } from '../src/index.js'

const skip = privilegedSkip()
const N = 100_000

function freshMap(): BpfMap {
  const s = mapSpecs.backend
  return BpfMap.create({ name: s.name, type: s.type, keySize: s.key.size, valueSize: s.value.size, maxEntries: N, flags: s.flags })
}

function packed(): { keys: Buffer; values: Buffer } {
  const keys = Buffer.alloc(N * backendKey.size)
  const values = Buffer.alloc(N * backendValue.size)
  for (let i = 0; i < N; i++) {
    backendKey.encode({ backendUid: i + 1 }, keys, i * backendKey.size)
    backendValue.encode({ address: `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`, services: [i] }, values, i * backendValue.size)
  }
  return { keys, values }
}

function rate(ms: number): string {
  return `${Math.round(N / (ms / 1000)).toLocaleString('en-US')} updates/s (${ms.toFixed(1)} ms)`
}

t.test(`throughput: ${N} single puts vs one putBatch (printed, not asserted)`, { skip }, async (t) => {
  const { keys, values } = packed()
  const ks = backendKey.size
  const vs = backendValue.size

  const single = freshMap()
  t.teardown(() => single.close())
  let start = performance.now()
  for (let i = 0; i < N; i++) single.put(keys.subarray(i * ks, (i + 1) * ks), values.subarray(i * vs, (i + 1) * vs))
  const singleMs = performance.now() - start
  t.equal(single.count(), N)

  const batch = freshMap()
  t.teardown(() => batch.close())
  start = performance.now()
  batch.putBatch(keys, values, N)
  const batchMs = performance.now() - start
  t.equal(batch.count(), N)

  start = performance.now()
  batch.deleteBatch(keys, N)
  const deleteMs = performance.now() - start
  t.equal(batch.count(), 0)

  t.comment(`single put:   ${rate(singleMs)}`)
  t.comment(`putBatch:     ${rate(batchMs)} — ${(singleMs / batchMs).toFixed(1)}× the single-put rate`)
  t.comment(`deleteBatch:  ${rate(deleteMs)}`)
})
