/**
 * bench/maps: how fast records reach a real BPF hash map through @kmesh-ts/bpf-maps (the built dist), shaped like
 * km_backend (4-byte key, 80-byte value). The baseline is (a), one bpf_map_update_elem per record, measured in the
 * same run; the others are given as rates and as × (a):
 *
 *   (a) put          one BPF_MAP_UPDATE_ELEM per record (the baseline)
 *   (b) putBatch     one BPF_MAP_UPDATE_BATCH for all the records
 *   (c) putBatch/8k  BPF_MAP_UPDATE_BATCH in chunks of 8192 records, as kmesh-daemon's MapWriter writes
 *   (d) delete       one BPF_MAP_DELETE_ELEM per record
 *   (e) deleteBatch  one BPF_MAP_DELETE_BATCH for all the records
 *
 * Interleaved rounds: every round runs each variant once into a fresh map, in an order rotated each round; the
 * table gives the median rate over rounds and the median of the per-round ratios to (a). Keys and values are
 * encoded before the clock starts: only the syscalls (and the binding's call overhead) are timed.
 * Moved here from packages/bpf-maps/test/native-throughput.test.ts, which printed these figures inside the tests.
 */
import { positiveIntOptions } from '../lib/options.mjs'
import { cpus, loadavg, release } from 'node:os'
import { performance } from 'node:perf_hooks'
import { existsSync } from 'node:fs'

const ROOT = new URL('../../', import.meta.url)
const BPF_MAPS = new URL('packages/bpf-maps/dist/index.js', ROOT)
const CHUNK = 8192

const OPTIONS = {
  records: { env: 'KMESH_BENCH_RECORDS', default: 100000, help: 'records written and deleted per variant' },
  rounds: { env: 'KMESH_BENCH_ROUNDS', default: 7, help: 'rounds over all variants (medians are taken over rounds)' },
}

const options = () => positiveIntOptions('node bench/maps/run.mjs [options]   (root; after `pnpm build`)', OPTIONS)

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b)
  const m = s.length >> 1
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2
}

async function main() {
  const opts = options()
  if (process.getuid?.() !== 0) throw new Error('the benchmark creates BPF maps (CAP_BPF): run it as root')
  if (!existsSync(BPF_MAPS)) throw new Error(`${BPF_MAPS.pathname} is missing: run \`pnpm build\` first`)
  const { BpfMap, backendKey, backendValue, mapSpecs } = await import(BPF_MAPS)
  const N = opts.records
  const spec = mapSpecs.backend
  const ks = spec.key.size
  const vs = spec.value.size

  const keys = Buffer.alloc(N * ks)
  const values = Buffer.alloc(N * vs)
  for (let i = 0; i < N; i++) {
    backendKey.encode({ backendUid: i + 1 }, keys, i * ks)
    backendValue.encode(
      { address: `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`, services: [i] },
      values,
      i * vs,
    )
  }
  const key = (i) => keys.subarray(i * ks, (i + 1) * ks)
  const value = (i) => values.subarray(i * vs, (i + 1) * vs)

  const fresh = () =>
    BpfMap.create({ name: 'kb_backend', type: spec.type, keySize: ks, valueSize: vs, maxEntries: N, flags: spec.flags })
  /** A full map for the delete variants (filled before the clock starts). */
  const full = () => {
    const m = fresh()
    m.putBatch(keys, values, N)
    return m
  }
  const expectCount = (m, n, what) => {
    const c = m.count()
    if (c !== n) throw new Error(`${what}: the map holds ${c} records, expected ${n}`)
  }

  const variants = [
    {
      id: 'a',
      name: 'put (one syscall per record)',
      setup: fresh,
      run: (m) => {
        for (let i = 0; i < N; i++) m.put(key(i), value(i))
      },
      after: N,
    },
    {
      id: 'b',
      name: `putBatch (one syscall for ${N})`,
      setup: fresh,
      run: (m) => m.putBatch(keys, values, N),
      after: N,
    },
    {
      id: 'c',
      name: `putBatch in chunks of ${CHUNK} (MapWriter)`,
      setup: fresh,
      after: N,
      run: (m) => {
        for (let i = 0; i < N; i += CHUNK) {
          const c = Math.min(CHUNK, N - i)
          m.putBatch(keys.subarray(i * ks, (i + c) * ks), values.subarray(i * vs, (i + c) * vs), c)
        }
      },
    },
    {
      id: 'd',
      name: 'delete (one syscall per record)',
      setup: full,
      run: (m) => {
        for (let i = 0; i < N; i++) m.delete(key(i))
      },
      after: 0,
    },
    { id: 'e', name: `deleteBatch (one syscall for ${N})`, setup: full, run: (m) => m.deleteBatch(keys, N), after: 0 },
  ]

  console.log(
    `bench/maps  kernel ${release()}, ${cpus().length} CPUs, load average ${loadavg()
      .map((l) => l.toFixed(1))
      .join(' ')}`,
  )
  console.log(
    `${N} records of km_backend's shape (${ks}-byte key, ${vs}-byte value) per variant, ${opts.rounds} rounds\n`,
  )

  const ms = Object.fromEntries(variants.map((v) => [v.id, []]))
  const ratio = Object.fromEntries(variants.map((v) => [v.id, []]))
  for (let r = 0; r < opts.rounds; r++) {
    const order = variants.map((_, i) => variants[(i + r) % variants.length])
    if (r % 2) order.reverse()
    const round = {}
    for (const v of order) {
      const m = v.setup()
      try {
        const t0 = performance.now()
        v.run(m)
        round[v.id] = performance.now() - t0
        expectCount(m, v.after, v.name)
      } finally {
        m.close()
      }
    }
    for (const v of variants) {
      ms[v.id].push(round[v.id])
      ratio[v.id].push(round.a / round[v.id]) // rate ratio: (x's records/s) / (a's records/s)
    }
  }

  const rate = (t) => Math.round(N / (t / 1000)).toLocaleString('en-US')
  const rows = variants.map((v) => {
    const med = median(ms[v.id])
    return [
      `(${v.id}) ${v.name}`,
      `${rate(med)}`,
      `${med.toFixed(1)}`,
      `${Math.min(...ms[v.id]).toFixed(1)}–${Math.max(...ms[v.id]).toFixed(1)}`,
      median(ratio[v.id]).toFixed(2),
    ]
  })
  const head = ['variant', 'records/s', 'ms (median)', 'ms (rounds min–max)', 'rate ×(a)']
  const w = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)))
  const line = (cells) => cells.map((c, i) => (i === 0 ? c.padEnd(w[i]) : c.padStart(w[i]))).join(' | ')
  console.log(line(head))
  console.log(w.map((n) => '-'.repeat(n)).join('-|-'))
  for (const r of rows) console.log(line(r))
  console.log(
    "\nrate ×(a): the median over rounds of (the variant's records/s) / (single put's records/s) in the same round",
  )
}

main().catch((err) => {
  console.error(`bench/maps: ${err.message}`)
  process.exit(1)
})
